package config

import "testing"

func TestParseAddress(t *testing.T) {
	for _, c := range []struct {
		in                string
		want              Address
		err               string
		via, hostport, ip string
	}{
		{in: "udp:127.0.0.1:5060", want: Address{"udp", "127.0.0.1", "5060"}, via: "UDP", hostport: "127.0.0.1:5060", ip: "127.0.0.1"},
		{in: "tls:[::1]:5061", want: Address{"tls", "::1", "5061"}, via: "TLS", hostport: "[::1]:5061", ip: "::1"},
		{in: "tcp:localhost:5070", want: Address{"tcp", "localhost", "5070"}, via: "TCP", hostport: "localhost:5070", ip: "127.0.0.1"},
		{in: "127.0.0.1", err: "want TRANSPORT:HOST:PORT"},
		{in: "xyz:nohostport", want: Address{Transport: "xyz"}, err: "want HOST:PORT"},
	} {
		a, err := ParseAddress(c.in)
		if a != c.want || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v, %s", c.in, a, err, c.want, c.err)
			continue
		}
		if err == nil && (a.Via() != c.via || a.HostPort() != c.hostport || a.IP() != c.ip) {
			t.Errorf("%q: Via %q HostPort %q IP %q", c.in, a.Via(), a.HostPort(), a.IP())
		}
	}
}
