package main

// A cross-check of the SIPp traces from the wire: a packet socket on the
// loopback interface (AF_PACKET, needs root or CAP_NET_RAW) with a kernel
// filter that keeps only B's requests to the server and the server's
// requests to A's display, timestamped by the kernel (SO_TIMESTAMPNS,
// CLOCK_REALTIME like SIPp's traces). SIPp stamps a message after sendto
// returns and after it reads a datagram, so a descheduled SIPp stamps late;
// the kernel stamp is when the datagram crossed lo.

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// wireCap records, by Call-ID, when B's BYEs and the display's MESSAGEs
// crossed the loopback interface.
type wireCap struct {
	fd      int
	mu      sync.Mutex
	bye     map[string]time.Time // B -> server
	message map[string]time.Time // server -> display
	stop    atomic.Bool
	done    chan struct{}
	packets atomic.Int64
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// startCapture opens the packet socket; an error means no cross-check
// (e.g. not root), never a failed run.
func startCapture(sipPort, bPort, displayPort int) (*wireCap, error) {
	lo, err := loopback()
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	// Ethernet (lo has a zero 14-byte header) / IPv4 / UDP: keep
	// bPort -> sipPort and sipPort -> displayPort. From B the destination must be the server; from the server it must
	// be the display. Jumps count from the next instruction.
	prog := []syscall.SockFilter{
		*syscall.LsfStmt(syscall.BPF_LD|syscall.BPF_H|syscall.BPF_ABS, 12),                 // 0 ethertype
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, 0x0800, 0, 10),     // 1 -> 12 drop
		*syscall.LsfStmt(syscall.BPF_LD|syscall.BPF_B|syscall.BPF_ABS, 23),                 // 2 protocol
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, 17, 0, 8),          // 3 -> 12 drop
		*syscall.LsfStmt(syscall.BPF_LDX|syscall.BPF_B|syscall.BPF_MSH, 14),                // 4 X = IP header length
		*syscall.LsfStmt(syscall.BPF_LD|syscall.BPF_H|syscall.BPF_IND, 14),                 // 5 source port
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, bPort, 0, 2),       // 6 from B? else 9
		*syscall.LsfStmt(syscall.BPF_LD|syscall.BPF_H|syscall.BPF_IND, 16),                 // 7 destination port
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, sipPort, 4, 3),     // 8 -> 13 accept / 12 drop
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, sipPort, 0, 2),     // 9 from the server? else 12
		*syscall.LsfStmt(syscall.BPF_LD|syscall.BPF_H|syscall.BPF_IND, 16),                 // 10 destination port
		*syscall.LsfJump(syscall.BPF_JMP|syscall.BPF_JEQ|syscall.BPF_K, displayPort, 1, 0), // 11 -> 13 accept / 12 drop
		*syscall.LsfStmt(syscall.BPF_RET|syscall.BPF_K, 0),                                 // 12 drop
		*syscall.LsfStmt(syscall.BPF_RET|syscall.BPF_K, 65535),                             // 13 accept
	}
	fail := func(what string, err error) (*wireCap, error) {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := syscall.AttachLsf(fd, prog); err != nil {
		return fail("attach filter", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: lo}); err != nil {
		return fail("bind to lo", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20)
	tv := syscall.Timeval{Usec: 200000} // the loop looks at stop every 200 ms
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	w := &wireCap{fd: fd, bye: map[string]time.Time{}, message: map[string]time.Time{}, done: make(chan struct{})}
	go w.loop(sipPort, bPort, displayPort)
	return w, nil
}

func loopback() (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			return i.Index, nil
		}
	}
	return 0, fmt.Errorf("no loopback interface")
}

func (w *wireCap) loop(sipPort, bPort, displayPort int) {
	defer close(w.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for !w.stop.Load() {
		n, oobn, _, from, err := syscall.Recvmsg(w.fd, buf, oob, 0)
		if err != nil {
			if err == syscall.EAGAIN || err == syscall.EINTR {
				continue
			}
			return
		}
		// lo shows each datagram twice: leaving (PACKET_OUTGOING) and
		// arriving (PACKET_HOST); keep the arrival, as tcpdump does.
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok && ll.Pkttype != syscall.PACKET_HOST {
			continue
		}
		at, ok := stamp(oob[:oobn])
		if !ok {
			at = time.Now()
		}
		w.packets.Add(1)
		w.take(buf[:n], at, sipPort, bPort, displayPort)
	}
}

func stamp(oob []byte) (time.Time, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Sec, ts.Nsec), true
		}
	}
	return time.Time{}, false
}

// take records a BYE from B or a MESSAGE to the display (first copy of each
// Call-ID: a retransmission keeps the first time).
func (w *wireCap) take(pkt []byte, at time.Time, sipPort, bPort, displayPort int) {
	if len(pkt) < 14+20+8 {
		return
	}
	ihl := int(pkt[14]&0x0f) * 4
	udp := 14 + ihl
	if len(pkt) < udp+8 {
		return
	}
	src, dst := int(binary.BigEndian.Uint16(pkt[udp:])), int(binary.BigEndian.Uint16(pkt[udp+2:]))
	payload := string(pkt[udp+8:])
	var m map[string]time.Time
	switch {
	case src == bPort && dst == sipPort && strings.HasPrefix(payload, "BYE "):
		m = w.bye
	case src == sipPort && dst == displayPort && strings.HasPrefix(payload, "MESSAGE "):
		m = w.message
	default:
		return
	}
	id := sipHeader(payload, "Call-ID", "i")
	if id == "" {
		return
	}
	w.mu.Lock()
	if _, seen := m[id]; !seen {
		m[id] = at
	}
	w.mu.Unlock()
}

// sipHeader is the value of the first header called name (or its compact
// form) in a SIP message.
func sipHeader(msg, name, compact string) string {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n")[1:] {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if strings.EqualFold(k, name) || (compact != "" && strings.EqualFold(k, compact)) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// times returns when the BYE of call bye and the MESSAGE of call msg were
// seen, waiting up to d for the capture to catch up.
func (w *wireCap) times(bye, msg string, d time.Duration) (time.Time, time.Time, bool) {
	deadline := time.Now().Add(d)
	for {
		w.mu.Lock()
		b, ok1 := w.bye[bye]
		m, ok2 := w.message[msg]
		w.mu.Unlock()
		if ok1 && ok2 {
			return b, m, true
		}
		if time.Now().After(deadline) {
			return b, m, false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (w *wireCap) close() {
	w.stop.Store(true)
	select {
	case <-w.done:
	case <-time.After(2 * time.Second):
	}
	syscall.Close(w.fd)
}
