package config

import (
	"errors"
	"net"
	"strings"
)

// Address is a SIP address of the configuration, "TRANSPORT:HOST:PORT": a
// sip.listen entry or a trunk's address. Parsed here only; the server
// binds to it and the B2BUA sends to it.
type Address struct {
	Transport string // as written: udp, tcp or tls once validated
	Host      string // an IP address (IPv6 without brackets) or localhost
	Port      string
}

var errNoTransport = errors.New("want TRANSPORT:HOST:PORT")

// ParseAddress splits "TRANSPORT:HOST:PORT". It checks the form only
// (Load checks the values); on a HOST:PORT that does not split, Transport
// is still set, so that a bad transport can be reported first.
func ParseAddress(s string) (Address, error) {
	transport, hostport, ok := strings.Cut(s, ":")
	if !ok {
		return Address{}, errNoTransport
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Address{Transport: transport}, errors.New("want HOST:PORT")
	}
	return Address{Transport: transport, Host: host, Port: port}, nil
}

// Via returns the transport as SIP writes it in Via and in sipgo's
// transport names: UDP, TCP or TLS.
func (a Address) Via() string { return strings.ToUpper(a.Transport) }

// HostPort returns "HOST:PORT" (IPv6 in brackets).
func (a Address) HostPort() string { return net.JoinHostPort(a.Host, a.Port) }

// IP returns the host as an address to send to or to put into SDP:
// localhost is 127.0.0.1.
func (a Address) IP() string {
	if a.Host == "localhost" {
		return "127.0.0.1"
	}
	return a.Host
}
