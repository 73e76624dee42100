/*
 * The headers Falcon's sidecar-lite.p4 parses, and the struct that holds them.
 *
 * Field widths follow the wire formats; field names are ours. The order of the members of
 * `sl_headers_t` is the order the switch emits valid headers in (see softnpu.p4), so it is
 * the wire order: Ethernet, then the sidecar header, then a VLAN tag, then L3, then L4.
 */

/* Ethernet II. */
header ethernet_h {
    bit<48> dst;
    bit<48> src;
    bit<16> ether_type;
}

/*
 * The sidecar header (ethertype 0x0901) between the switch and its CPU port, 24 bytes.
 * Same layout as src/switch/sidecar-header.ts.
 */
header sidecar_h {
    bit<8>   code;        /* 0 = from userspace, 1 = to userspace, ... */
    bit<8>   pad;
    bit<16>  in_port;     /* the port the frame came in on */
    bit<16>  out_port;    /* the port to send it out of (from the CPU port) */
    bit<16>  ether_type;  /* the ethertype of what follows */
    bit<128> payload;
}

/* An 802.1Q tag. */
header vlan_h {
    bit<3>  pcp;
    bit<1>  dei;
    bit<12> vid;
    bit<16> ether_type;
}

/* ARP for IPv4 over Ethernet (28 bytes; the address lengths are not looked at). */
header arp_h {
    bit<16> htype;
    bit<16> ptype;
    bit<8>  hlen;
    bit<8>  plen;
    bit<16> opcode;
    bit<48> sender_mac;
    bit<32> sender_ip;
    bit<48> target_mac;
    bit<32> target_ip;
}

/* The fixed 20 bytes of IPv4; options, if any, are left in the payload. */
header ipv4_h {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  dscp_ecn;
    bit<16> total_len;
    bit<16> ident;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src;
    bit<32> dst;
}

/* The fixed 40 bytes of IPv6. */
header ipv6_h {
    bit<4>   version;
    bit<8>   traffic_class;
    bit<20>  flow_label;
    bit<16>  payload_len;
    bit<8>   next_hdr;
    bit<8>   hop_limit;
    bit<128> src;
    bit<128> dst;
}

/* The first 8 bytes of ICMP / ICMPv6 (echo layout). */
header icmp_h {
    bit<8>  icmp_type;
    bit<8>  icmp_code;
    bit<16> checksum;
    bit<16> ident;
    bit<16> seq;
}

/* TCP without options (20 bytes). */
header tcp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  reserved;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent;
}

/* UDP (8 bytes). */
header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> len;
    bit<16> checksum;
}

/*
 * The 4-byte fixed part of the delay-driven multipath (DDM) header that Oxide's maghemite
 * puts after IPv6 (next header 0xdd). Its per-hop elements are left in the payload.
 */
header ddm_h {
    bit<8> next_header;
    bit<8> header_length;
    bit<8> version;
    bit<1> ack;
    bit<7> reserved;
}

/* Everything the parser can extract, in emission order. */
struct sl_headers_t {
    ethernet_h ethernet;
    sidecar_h  sidecar;
    vlan_h     vlan;
    arp_h      arp;
    ipv4_h     ipv4;
    ipv6_h     ipv6;
    icmp_h     icmp;
    tcp_h      tcp;
    udp_h      udp;
    ddm_h      ddm;
}
