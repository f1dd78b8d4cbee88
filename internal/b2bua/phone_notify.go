package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/registrar"
	"github.com/callbackd/callbackd/internal/sipmsg"
)

// Binding is a registered device.
type Binding = registrar.Binding

// RecallAlertInfo marks the ring of a Call Back recall (RFC 7462 section 4.2,
// "recall:callback"), so a phone can ring it distinctively.
const RecallAlertInfo = "<urn:alert:service:recall:callback>"

// ServiceUser is the user part of the From of requests the server itself
// sends to phones (screens, alerts).
const ServiceUser = sipmsg.ServiceUser

// outOfDialog builds a request from the server (ServiceUser, shown as
// fromName) to one device of line dn, the first of a new dialog.
func (b *B2BUA) outOfDialog(method sip.RequestMethod, dn string, d Binding, fromName string) (*sip.Request, *sipmsg.Dialog, error) {
	dlg, err := sipmsg.NewDialog(sip.Uri{Scheme: "sip", User: ServiceUser, Host: b.cfg.Domain}, fromName,
		sip.Uri{Scheme: "sip", User: dn, Host: b.cfg.Domain}, d.Contact, d.Source, d.Transport)
	if err != nil {
		return nil, nil, err
	}
	return b.msg.Request(dlg, method, 1), dlg, nil
}

// SendText sends text to every registered device of line dn as a SIP
// MESSAGE (RFC 3428, text/plain): how the Call Back screens reach a phone.
// It returns when every device answered or timed out; the number of devices
// that accepted it is returned.
func (b *B2BUA) SendText(dn, text string) int {
	devices := b.reg.Bindings(dn)
	done := make(chan bool, len(devices))
	for _, d := range devices {
		req, _, err := b.outOfDialog(sip.MESSAGE, dn, d, "CallBack")
		if err != nil {
			done <- false
			continue
		}
		req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
		req.SetBody([]byte(text))
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 64*sip.T1)
			defer cancel()
			res, err := b.client.Do(ctx, req, noBuild)
			// sipgo may return neither (the client closing at shutdown).
			ok := err == nil && res != nil && res.IsSuccess()
			if !ok {
				b.log.Debug("screen not delivered", "dn", dn, "contact", d.Contact, "error", err)
			}
			done <- ok
		}()
	}
	n := 0
	for range devices {
		if <-done {
			n++
		}
	}
	return n
}

// Alert rings every registered device of line dn for ring, with the recall
// Alert-Info, then cancels: the Call Back audio alert (F12) for phones that
// have no other way to beep on request. The INVITE has no SDP; a device
// that answers anyway is sent BYE at once (the screen says what to do).
func (b *B2BUA) Alert(dn, about string, ring time.Duration) {
	if ring <= 0 {
		return
	}
	for _, d := range b.reg.Bindings(dn) {
		req, dlg, err := b.outOfDialog(sip.INVITE, dn, d, "CallBack "+about)
		if err != nil {
			continue
		}
		req.AppendHeader(sip.NewHeader("Alert-Info", RecallAlertInfo))
		req.AppendHeader(sip.NewHeader("Allow", allow))
		req.SetBody(nil)
		go b.alertDevice(req, dlg, ring)
	}
}

func (b *B2BUA) alertDevice(inv *sip.Request, dlg *sipmsg.Dialog, ring time.Duration) {
	tx, err := b.client.TransactionRequest(context.Background(), inv, noBuild)
	if err != nil {
		b.log.Debug("alert not sent", "error", err)
		return
	}
	defer tx.Terminate()
	timer := time.NewTimer(ring)
	defer timer.Stop()
	provisional, cancelled, cancelSent := false, false, false
	cancel := func() {
		if provisional && cancelled && !cancelSent {
			cancelSent = true
			go b.fireAndForget(sipmsg.Cancel(inv))
		}
	}
	for {
		select {
		case <-timer.C:
			cancelled = true
			cancel()
		case res := <-tx.Responses():
			switch {
			case res.StatusCode < 200:
				provisional = true
				cancel()
			case res.StatusCode < 300:
				f := &fork{leg: &leg{Dialog: dlg}, invite: inv}
				b.dropAnswer(f, res)
				return
			default:
				return
			}
		case <-tx.Done():
			return
		}
	}
}
