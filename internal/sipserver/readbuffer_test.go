package sipserver

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The SIP UDP socket asks for a receive buffer that holds a read pause's
// worth of load (issue 14), within what the system allows.
func TestSIPUDPReadBuffer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	setReadBuffer(pc, slog.New(slog.DiscardHandler))
	want := udpReadBuffer
	if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
		if max, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && max < want {
			want = max
		}
	}
	rc, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	rc.Control(func(fd uintptr) { got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if got < want { // Linux reports twice the size asked for
		t.Errorf("SO_RCVBUF = %d, want at least %d", got, want)
	}
}
