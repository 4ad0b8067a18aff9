//! Which IP addresses mecha's outgoing HTTP may reach: the one place that decides it, for the
//! plugin gate, adapters' upstreams and worker endpoints alike.
//!
//! Addresses fall in three classes ([`Class`]):
//!
//! - **forbidden**, for everyone, always: cloud metadata services (169.254.169.254 and its
//!   relatives, where a cloud machine hands out its credentials), all of link-local (fe80::/10,
//!   169.254.0.0/16), "this host" (0.0.0.0/8, `::`, which Linux connects to loopback), broadcast
//!   and multicast, and the local-use NAT64 prefix, whose IPv4 address cannot be told;
//! - **internal**: loopback, private, shared (CGNAT), unique-local, documentation and reserved
//!   ranges. The operator's own machines live here, so adapters and live workers may reach
//!   them, and plugins may when the operator allowed private networks;
//! - **public**: everything else.
//!
//! An IPv6 address that stands for an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
//! `::a.b.c.d`, SIIT `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`,
//! Teredo) is judged by the IPv4 address it carries: otherwise `::ffff:169.254.169.254` or
//! `64:ff9b::a9fe:a9fe` would walk past a check that only knows the IPv4 spelling.
//!
//! ```
//! use mecha::net::address::{Reach, check};
//!
//! assert!(check("10.0.0.5".parse().unwrap(), Reach::Internal).is_ok());
//! assert!(check("10.0.0.5".parse().unwrap(), Reach::Public).is_err());
//! assert!(check("64:ff9b::a9fe:a9fe".parse().unwrap(), Reach::Internal).is_err());
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, as far as connecting to it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// On the public internet.
    Public,
    /// On this machine or a network of the operator's (loopback, private, unique-local, ...).
    Internal,
    /// Never to be connected to, with why.
    Forbidden(Forbidden),
}

/// Why an address is never reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// A cloud provider's metadata or platform service.
    Metadata,
    /// Link-local: reachable only on the wire the machine sits on, and home of the metadata
    /// services on most clouds.
    LinkLocal,
    /// "This host" (`0.0.0.0/8`, `::`): Linux connects it to loopback.
    Unspecified,
    /// The limited broadcast address or a multicast group.
    Broadcast,
    /// A local-use NAT64 address (64:ff9b:1::/48): the IPv4 address it reaches depends on a
    /// prefix length mecha cannot know, so it cannot be checked.
    Untranslatable,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Forbidden::Metadata => "a cloud metadata address",
            Forbidden::LinkLocal => "a link-local address",
            Forbidden::Unspecified => "an unspecified (this-host) address",
            Forbidden::Broadcast => "a broadcast or multicast address",
            Forbidden::Untranslatable => "a local-use NAT64 address whose IPv4 address is unknown",
        })
    }
}

/// What a caller may reach besides the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only: a plugin calling a provider's API.
    Public,
    /// Public and internal addresses: a local model server, a worker on the LAN, a plugin
    /// whose operator allowed private networks.
    Internal,
}

/// An address a caller may not reach, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {reason}")]
pub struct Refusal {
    pub address: IpAddr,
    pub reason: Reason,
}

/// Why [`check`] refused an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Never reachable.
    Forbidden(Forbidden),
    /// Internal, and the caller may reach public addresses only.
    Internal,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forbidden(why) => write!(f, "{why}, which mecha never connects to"),
            Reason::Internal => f.write_str("a private, loopback or other non-public address"),
        }
    }
}

/// Whether a caller with `reach` may connect to `address`.
pub fn check(address: IpAddr, reach: Reach) -> Result<(), Refusal> {
    let reason = match (classify(address), reach) {
        (Class::Forbidden(why), _) => Reason::Forbidden(why),
        (Class::Internal, Reach::Public) => Reason::Internal,
        (Class::Public, _) | (Class::Internal, Reach::Internal) => return Ok(()),
    };
    Err(Refusal { address, reason })
}

/// The class of `address`.
pub fn classify(address: IpAddr) -> Class {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Metadata services that sit outside 169.254.0.0/16 (everything inside it is refused anyway):
/// Alibaba Cloud's, Oracle Cloud's, and Azure's platform "wire server".
const METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
    Ipv4Addr::new(168, 63, 129, 16),
];

/// Metadata services inside 169.254.0.0/16, named apart only so that refusals say what they
/// are: 169.254.169.254 (AWS, Google Cloud, Azure, OpenStack), 169.254.170.2 (AWS ECS task
/// credentials) and 169.254.170.23 (the EKS Pod Identity agent).
const LINK_LOCAL_METADATA_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
];

/// AWS's instance metadata (fd00:ec2::254) and EKS Pod Identity agent (fd00:ec2::23), and
/// Google Cloud's metadata (fd20:ce::254), over IPv6.
const METADATA_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),
];

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, ..] = ip.octets();
    if METADATA_V4.contains(&ip) {
        Class::Forbidden(Forbidden::Metadata)
    } else if ip.is_link_local() {
        Class::Forbidden(if LINK_LOCAL_METADATA_V4.contains(&ip) {
            Forbidden::Metadata
        } else {
            Forbidden::LinkLocal
        })
    } else if a == 0 {
        Class::Forbidden(Forbidden::Unspecified)
    } else if ip.is_broadcast() || ip.is_multicast() {
        Class::Forbidden(Forbidden::Broadcast)
    } else if ip.is_loopback()
        || ip.is_private()
        || ip.is_documentation()
        // 100.64.0.0/10, shared address space (carrier-grade NAT, also Tailscale).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments; 192.88.99.0/24, the old 6to4 relays.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 192 && b == 88 && ip.octets()[2] == 99)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4, reserved.
        || a >= 240
    {
        Class::Internal
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    if METADATA_V6.contains(&ip) {
        return Class::Forbidden(Forbidden::Metadata);
    }
    if ip.is_unspecified() {
        return Class::Forbidden(Forbidden::Unspecified);
    }
    if ip.is_loopback() {
        return Class::Internal;
    }
    let segments = ip.segments();
    if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
        // ::ffff:0:a.b.c.d, SIIT's IPv4-translated form.
        return classify_v4(low_v4(ip));
    }
    if let Some(v4) = ip.to_ipv4() {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible); `::` and `::1` are handled above.
        return classify_v4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // 64:ff9b::/96, the well-known NAT64 prefix: a DNS64 resolver writes any IPv4 address
        // this way on an IPv6-only network.
        return classify_v4(low_v4(ip));
    }
    if segments[..3] == [0x64, 0xff9b, 1] {
        return Class::Forbidden(Forbidden::Untranslatable);
    }
    if segments[0] == 0x2002 {
        // 6to4: the IPv4 address of the site's gateway follows the prefix.
        let [_, _, a, b, c, d, ..] = ip.octets();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[..2] == [0x2001, 0] {
        // Teredo: the client's IPv4 address is the last 32 bits, inverted.
        let inverted = !u32::from(low_v4(ip));
        return classify_v4(Ipv4Addr::from(inverted));
    }
    let first = segments[0];
    if (first & 0xffc0) == 0xfe80 {
        Class::Forbidden(Forbidden::LinkLocal)
    } else if ip.is_multicast() {
        Class::Forbidden(Forbidden::Broadcast)
    } else if (first & 0xfe00) == 0xfc00
        // fec0::/10, the deprecated site-local range.
        || (first & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation.
        || (first == 0x2001 && segments[1] == 0x0db8)
        // 100::/64, discard-only.
        || segments[..4] == [0x100, 0, 0, 0]
    {
        Class::Internal
    } else {
        Class::Public
    }
}

/// The last 32 bits of `ip` as an IPv4 address.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> Class {
        classify(text.parse().expect(text))
    }

    #[test]
    fn metadata_services_in_every_spelling_are_forbidden() {
        for address in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "192.0.0.192",
            "168.63.129.16",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "169.254.170.23",
            "fd20:ce::254",
            "::ffff:169.254.169.254",
            "::ffff:a9fe:a9fe",
            "::169.254.169.254",
            "::ffff:0:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::100.100.100.200",
            "::ffff:100.100.100.200",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:5601:5601",
        ] {
            assert_eq!(
                class(address),
                Class::Forbidden(Forbidden::Metadata),
                "{address}"
            );
        }
    }

    #[test]
    fn link_local_unspecified_broadcast_and_untranslatable_are_forbidden() {
        for (address, why) in [
            ("169.254.10.1", Forbidden::LinkLocal),
            ("fe80::1", Forbidden::LinkLocal),
            ("febf::1", Forbidden::LinkLocal),
            ("::ffff:169.254.1.1", Forbidden::LinkLocal),
            ("0.0.0.0", Forbidden::Unspecified),
            ("0.1.2.3", Forbidden::Unspecified),
            ("::", Forbidden::Unspecified),
            ("::ffff:0.0.0.0", Forbidden::Unspecified),
            ("255.255.255.255", Forbidden::Broadcast),
            ("224.0.0.1", Forbidden::Broadcast),
            ("ff02::1", Forbidden::Broadcast),
            ("64:ff9b:1::a9fe:a9fe", Forbidden::Untranslatable),
            ("64:ff9b:1:ffff::1", Forbidden::Untranslatable),
        ] {
            assert_eq!(class(address), Class::Forbidden(why), "{address}");
        }
    }

    #[test]
    fn internal_ranges_and_their_translations() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.199",
            "192.0.0.8",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:0a00:0001::1",
        ] {
            assert_eq!(class(address), Class::Internal, "{address}");
        }
    }

    #[test]
    fn public_addresses() {
        for address in [
            "140.82.112.6",
            "1.1.1.1",
            "100.128.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "2606:4700::1111",
            "64:ff9b::8c52:7006",
            "::ffff:140.82.112.6",
            "2002:8c52:7006::1",
        ] {
            assert_eq!(class(address), Class::Public, "{address}");
        }
    }

    #[test]
    fn reach_decides_internal_addresses_only() {
        let private: IpAddr = "10.0.0.1".parse().expect("ip");
        let metadata: IpAddr = "169.254.169.254".parse().expect("ip");
        let public: IpAddr = "1.1.1.1".parse().expect("ip");
        assert_eq!(check(private, Reach::Internal), Ok(()));
        assert_eq!(check(public, Reach::Public), Ok(()));
        let refused = check(private, Reach::Public).expect_err("private");
        assert_eq!(refused.reason, Reason::Internal);
        for reach in [Reach::Public, Reach::Internal] {
            let refused = check(metadata, reach).expect_err("metadata");
            assert_eq!(
                refused.to_string(),
                "169.254.169.254 is a cloud metadata address, which mecha never connects to"
            );
        }
    }
}
