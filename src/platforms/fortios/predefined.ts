/**
 * FortiOS predefined firewall services and service groups, as FortiOS configuration text, so
 * they go through the same parser and resolver as a user's own definitions.
 *
 * Source: the `config firewall service custom` / `service group` sections of a FortiOS 7.x
 * factory-default configuration (the objects every FortiGate ships with; FortiOS writes them
 * into every full backup). Cross-checked: IKE = UDP 500 and 4500 ("'IKE' (includes ports 500 and
 * 4500)", https://community.fortinet.com/t5/FortiGate/Technical-Tip-Allow-IPsec-VPN-ports-and-protocol-access-to/ta-p/251878;
 * seed 001 "The 'IKE' service object is includes ports UDP 500 & 4500"); ALL = protocol IP,
 * protocol-number 0 and ALL_TCP = TCP 1-65535 as returned by a FortiGate's REST API
 * (`/api/v2/cmdb/firewall.service/custom/`, https://gist.github.com/kongou-ae/76941c8014dc7d21519c85ba21fb0414);
 * ESP/AH/GRE as IP protocols 50/51/47 (FortiGate administration guide, predefined services table).
 *
 * A backup that defines one of these names itself wins; these only fill in for partial configs.
 */
export const PREDEFINED_FILE = "<fortios-predefined>";

export const PREDEFINED_SERVICES = `config firewall service custom
    edit "ALL"
        set protocol IP
    next
    edit "ALL_TCP"
        set tcp-portrange 1-65535
    next
    edit "ALL_UDP"
        set udp-portrange 1-65535
    next
    edit "ALL_ICMP"
        set protocol ICMP
    next
    edit "ALL_ICMP6"
        set protocol ICMP6
    next
    edit "GRE"
        set protocol IP
        set protocol-number 47
    next
    edit "AH"
        set protocol IP
        set protocol-number 51
    next
    edit "ESP"
        set protocol IP
        set protocol-number 50
    next
    edit "BGP"
        set tcp-portrange 179
    next
    edit "DHCP"
        set udp-portrange 67-68
    next
    edit "DNS"
        set tcp-portrange 53
        set udp-portrange 53
    next
    edit "FTP"
        set tcp-portrange 21
    next
    edit "H323"
        set tcp-portrange 1720 1503
        set udp-portrange 1719
    next
    edit "HTTP"
        set tcp-portrange 80
    next
    edit "HTTPS"
        set tcp-portrange 443
    next
    edit "IKE"
        set udp-portrange 500 4500
    next
    edit "IMAP"
        set tcp-portrange 143
    next
    edit "IMAPS"
        set tcp-portrange 993
    next
    edit "L2TP"
        set tcp-portrange 1701
        set udp-portrange 1701
    next
    edit "LDAP"
        set tcp-portrange 389
    next
    edit "LDAP_UDP"
        set udp-portrange 389
    next
    edit "NTP"
        set tcp-portrange 123
        set udp-portrange 123
    next
    edit "OSPF"
        set protocol IP
        set protocol-number 89
    next
    edit "PING"
        set protocol ICMP
        set icmptype 8
    next
    edit "PING6"
        set protocol ICMP6
        set icmptype 128
    next
    edit "TIMESTAMP"
        set protocol ICMP
        set icmptype 13
    next
    edit "POP3"
        set tcp-portrange 110
    next
    edit "POP3S"
        set tcp-portrange 995
    next
    edit "PPTP"
        set tcp-portrange 1723
    next
    edit "RADIUS"
        set udp-portrange 1812 1813
    next
    edit "RDP"
        set tcp-portrange 3389
    next
    edit "RIP"
        set udp-portrange 520
    next
    edit "SAMBA"
        set tcp-portrange 139
    next
    edit "SIP"
        set tcp-portrange 5060
        set udp-portrange 5060
    next
    edit "SMB"
        set tcp-portrange 445
    next
    edit "SMTP"
        set tcp-portrange 25
    next
    edit "SMTPS"
        set tcp-portrange 465
    next
    edit "SNMP"
        set tcp-portrange 161-162
        set udp-portrange 161-162
    next
    edit "SSH"
        set tcp-portrange 22
    next
    edit "SYSLOG"
        set udp-portrange 514
    next
    edit "TELNET"
        set tcp-portrange 23
    next
    edit "TFTP"
        set udp-portrange 69
    next
    edit "TRACEROUTE"
        set udp-portrange 33434-33535
    next
    edit "KERBEROS"
        set tcp-portrange 88 464
        set udp-portrange 88 464
    next
    edit "DCE-RPC"
        set tcp-portrange 135
        set udp-portrange 135
    next
    edit "DHCP6"
        set udp-portrange 546 547
    next
    edit "MS-SQL"
        set tcp-portrange 1433 1434
    next
    edit "MYSQL"
        set tcp-portrange 3306
    next
    edit "VNC"
        set tcp-portrange 5900
    next
    edit "NONE"
        set tcp-portrange 0
    next
end
config firewall service group
    edit "Email Access"
        set member "DNS" "IMAP" "IMAPS" "POP3" "POP3S" "SMTP" "SMTPS"
    next
    edit "Web Access"
        set member "DNS" "HTTP" "HTTPS"
    next
    edit "Windows AD"
        set member "DCE-RPC" "DNS" "KERBEROS" "LDAP" "LDAP_UDP" "SAMBA" "SMB"
    next
end
`;
