// Package registrar implements the REGISTER side of RFC 3261 (section 10.3):
// digest authentication, bindings with expiry and refresh, several devices
// per line, de-registration. Bindings are stored before the 200 OK is sent,
// so a restart keeps them until they expire.
package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callbackd/callbackd/internal/auth"
	"github.com/callbackd/callbackd/internal/config"
	"github.com/callbackd/callbackd/internal/directory"
	"github.com/callbackd/callbackd/internal/linestate"
	"github.com/callbackd/callbackd/internal/store"
)

// Binding is one registered device of a line.
type Binding = store.Registration

// Registrar holds the live bindings of every line.
type Registrar struct {
	cfg   config.SIP
	dir   *directory.Directory
	auth  *auth.Authenticator
	store store.Store
	lines *linestate.Tracker
	log   *slog.Logger
	now   func() time.Time

	mu       sync.RWMutex
	bindings map[string][]Binding // by DN, sorted by Contact
	// logins indexes the Extension Mobility logins by the phone's address
	// (loginKey): every call's identify asks, and must not scan all bindings.
	logins map[string]string

	onChange func(dn string, bindings []Binding) // optional observer (tests, engine)

	// OnReset, when set before serving, is told that a device of line dn
	// went away or restarted (F25): it de-registered, its registration
	// expired, or it registered again with a new Call-ID, which a UA does
	// after a reboot (RFC 3261 10.2.4: the Call-ID is kept across
	// refreshes "until the UA reboots"). It must not block.
	OnReset func(dn string)
}

// Extension Mobility (F23): a login is a binding of the user's line to the
// phone's contact and address, marked by its Call-ID (the phone never
// registers the line itself, so the Call-ID plays no part in CSeq order).
const mobilityCallID = "mobility:"

// mobilityLogin lasts this long unless the user logs out first.
const mobilityLogin = 12 * time.Hour

// DeviceOf returns the binding of line dn's own device (not a login) that
// a request of a phone authenticated as dn comes from: the one with the
// request's Contact, else the one at its source (transport, ip:port).
func (r *Registrar) DeviceOf(dn, transport, source, contact string) (Binding, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	var at Binding
	found := false
	for _, b := range r.bindings[dn] {
		if strings.HasPrefix(b.CallID, mobilityCallID) || !b.Expires.After(now) {
			continue
		}
		if contact != "" && b.Contact == contact {
			return b, true
		}
		if !found && b.Source == source && strings.EqualFold(b.Transport, transport) {
			at, found = b, true
		}
	}
	return at, found
}

// LoginOn returns the line a user logged in to on the phone authenticated
// as device line dn (F23), if any: the login made on that phone's own
// binding (see DeviceOf), never one found by a bare source address.
func (r *Registrar) LoginOn(dn, transport, source, contact string) (string, bool) {
	d, ok := r.DeviceOf(dn, transport, source, contact)
	if !ok {
		return "", false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	user, ok := r.logins[loginKey(d.Transport, d.Source)]
	if !ok {
		return "", false
	}
	now := r.now()
	for _, b := range r.bindings[user] {
		if strings.HasPrefix(b.CallID, mobilityCallID) && b.Contact == d.Contact && b.Source == d.Source &&
			strings.EqualFold(b.Transport, d.Transport) && b.Expires.After(now) {
			return user, true
		}
	}
	return "", false // expired, not swept yet
}

func loginKey(transport, source string) string { return strings.ToUpper(transport) + " " + source }

// index keeps logins in step with line dn's bindings bs; r.mu is held.
func (r *Registrar) index(dn string, bs []Binding) {
	for k, v := range r.logins {
		if v == dn {
			delete(r.logins, k)
		}
	}
	r.indexNew(dn, bs)
}

// indexNew adds the logins of bindings new to a line that had none.
func (r *Registrar) indexNew(dn string, bs []Binding) {
	for _, b := range bs {
		if strings.HasPrefix(b.CallID, mobilityCallID) {
			r.logins[loginKey(b.Transport, b.Source)] = dn
		}
	}
}

// Login binds line dn to device (a binding of another line): dn's calls
// ring there. A login of the same line elsewhere ends (one phone per user).
func (r *Registrar) Login(ctx context.Context, dn, user string, device Binding) error {
	for _, b := range r.Bindings(dn) {
		if strings.HasPrefix(b.CallID, mobilityCallID) {
			if err := r.removeBinding(ctx, dn, b.Contact); err != nil {
				return err
			}
		}
	}
	b := device
	b.DN, b.CallID, b.CSeq = dn, mobilityCallID+user, 0
	b.Expires = r.now().Add(mobilityLogin)
	if err := r.store.PutRegistration(ctx, b); err != nil {
		return fmt.Errorf("store login: %w", err)
	}
	r.apply(dn, func(bs []Binding) []Binding {
		bs = remove(bs, b.Contact, func(Binding) bool { return true })
		bs = append(bs, b)
		sort.Slice(bs, func(i, j int) bool { return bs[i].Contact < bs[j].Contact })
		return bs
	})
	r.log.Info("extension mobility login", "dn", dn, "user", user, "device", device.DN, "source", device.Source)
	return nil
}

// Logout ends the login of line dn on device (the phone's own binding).
func (r *Registrar) Logout(ctx context.Context, dn string, device Binding) error {
	for _, b := range r.Bindings(dn) {
		if strings.HasPrefix(b.CallID, mobilityCallID) && b.Contact == device.Contact && b.Source == device.Source && strings.EqualFold(b.Transport, device.Transport) {
			if err := r.removeBinding(ctx, dn, b.Contact); err != nil {
				return err
			}
		}
	}
	r.log.Info("extension mobility logout", "dn", dn, "device", device.DN, "source", device.Source)
	return nil
}

func (r *Registrar) reset(dn string) {
	if r.OnReset != nil {
		r.OnReset(dn)
	}
}

// New returns a Registrar; call Load before serving.
func New(cfg config.SIP, dir *directory.Directory, a *auth.Authenticator, st store.Store, lines *linestate.Tracker, log *slog.Logger) *Registrar {
	return &Registrar{cfg: cfg, dir: dir, auth: a, store: st, lines: lines, log: log, now: time.Now, bindings: map[string][]Binding{}, logins: map[string]string{}}
}

// OnChange sets a function called (outside any lock) after a line's
// bindings change.
func (r *Registrar) OnChange(f func(dn string, bindings []Binding)) { r.onChange = f }

// Load restores stored bindings, dropping expired ones and ones of lines
// that are no longer configured.
func (r *Registrar) Load(ctx context.Context) error {
	regs, err := r.store.Registrations(ctx)
	if err != nil {
		return fmt.Errorf("registrar: load: %w", err)
	}
	now := r.now()
	kept := regs[:0] // filtered in place
	for _, b := range regs {
		if _, ok := r.dir.Line(b.DN); !ok || !b.Expires.After(now) {
			if err := r.store.DeleteRegistration(ctx, b.DN, b.Contact); err != nil {
				return fmt.Errorf("registrar: load: %w", err)
			}
			continue
		}
		kept = append(kept, b)
	}
	// The store returns the bindings by line, so a line's bindings are a
	// run of kept, taken as they are (capped: a binding added later
	// copies the run instead of writing over the next line's). A start
	// with 100k registrations spent a fifth of this copying them through
	// two maps.
	type devices struct {
		dn string
		n  int
	}
	var counts []devices
	// Under the lock: the metrics sampler counts bindings from the start
	// (a start with 100k registrations died of "concurrent map iteration
	// and map write").
	r.mu.Lock()
	if len(r.bindings) == 0 {
		r.bindings = make(map[string][]Binding, len(kept))
	}
	for i := 0; i < len(kept); {
		j := i + 1
		for j < len(kept) && kept[j].DN == kept[i].DN {
			j++
		}
		dn, run := kept[i].DN, kept[i:j:j]
		if old := r.bindings[dn]; len(old) > 0 {
			r.bindings[dn] = append(old, run...)
			r.index(dn, r.bindings[dn])
		} else {
			r.bindings[dn] = run
			r.indexNew(dn, run)
		}
		counts = append(counts, devices{dn, len(r.bindings[dn])})
		i = j
	}
	r.mu.Unlock()
	for _, c := range counts {
		r.lines.SetDevices(c.dn, c.n)
	}
	r.log.Info("registrations restored", "bindings", len(kept), "dropped", len(regs)-len(kept))
	return nil
}

// Bindings returns the live bindings of a line.
func (r *Registrar) Bindings(dn string) []Binding {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	out := make([]Binding, 0, len(r.bindings[dn]))
	for _, b := range r.bindings[dn] {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}

// Count returns the number of live bindings over all lines.
func (r *Registrar) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, bs := range r.bindings {
		n += len(bs)
	}
	return n
}

// RegisteredFrom reports whether any line has a live device registered
// from source over transport (ignoring mobility logins). The SIP transport
// asks it only when a TCP connection reaches its idle timeout: a phone's
// connection stays open while it is registered, since calls to it go that
// way. It scans every binding, which is why it is not asked per message.
func (r *Registrar) RegisteredFrom(transport, source string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	for _, bs := range r.bindings {
		for _, b := range bs {
			if !strings.HasPrefix(b.CallID, mobilityCallID) && b.Source == source &&
				strings.EqualFold(b.Transport, transport) && b.Expires.After(now) {
				return true
			}
		}
	}
	return false
}

// FromSource reports whether a request arriving from source over transport
// comes from a device registered on line dn. The B2BUA trusts such requests
// without a challenge only with [sip] trust_registered_source, and only
// over TCP (a UDP source address is spoofable; docs/security.md).
func (r *Registrar) FromSource(dn, transport, source string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	for _, b := range r.bindings[dn] {
		if b.Source == source && strings.EqualFold(b.Transport, transport) && b.Expires.After(now) {
			return true
		}
	}
	return false
}

// Run removes expired bindings once a second until ctx ends.
func (r *Registrar) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.expire(ctx)
		}
	}
}

func (r *Registrar) expire(ctx context.Context) {
	now := r.now()
	var gone []Binding
	r.mu.RLock()
	for _, bs := range r.bindings {
		for _, b := range bs {
			if !b.Expires.After(now) {
				gone = append(gone, b)
			}
		}
	}
	r.mu.RUnlock()
	for _, b := range gone {
		if err := r.store.DeleteRegistration(ctx, b.DN, b.Contact); err != nil {
			r.log.Error("expire registration", "dn", b.DN, "error", err)
			continue
		}
		r.log.Info("registration expired", "dn", b.DN, "contact", b.Contact)
		r.reset(b.DN)
		r.apply(b.DN, func(bs []Binding) []Binding {
			return remove(bs, b.Contact, func(x Binding) bool { return !x.Expires.After(now) })
		})
	}
}

// apply changes a line's bindings under the lock, then updates line state
// and tells the observer.
func (r *Registrar) apply(dn string, f func([]Binding) []Binding) {
	r.mu.Lock()
	bs := f(r.bindings[dn])
	if len(bs) == 0 {
		delete(r.bindings, dn)
	} else {
		r.bindings[dn] = bs
	}
	r.index(dn, bs)
	n := len(bs)
	cp := append([]Binding(nil), bs...)
	r.mu.Unlock()
	r.lines.SetDevices(dn, n)
	if r.onChange != nil {
		r.onChange(dn, cp)
	}
}

func remove(bs []Binding, contact string, also func(Binding) bool) []Binding {
	out := bs[:0:0]
	for _, b := range bs {
		if b.Contact == contact && also(b) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// errResponse carries a SIP status for a refused REGISTER.
type errResponse struct {
	code    int
	reason  string
	headers []sip.Header
}

func (e *errResponse) Error() string { return strconv.Itoa(e.code) + " " + e.reason }

func refuse(code int, reason string, h ...sip.Header) error {
	return &errResponse{code: code, reason: reason, headers: h}
}

// HandleRegister answers one REGISTER.
func (r *Registrar) HandleRegister(req *sip.Request, tx sip.ServerTransaction) {
	res, err := r.register(req)
	if err != nil {
		var e *errResponse
		if !errors.As(err, &e) {
			r.log.Error("register failed", "error", err, "source", req.Source())
			e = &errResponse{code: 500, reason: "Server Internal Error"}
		}
		res = sip.NewResponseFromRequest(req, e.code, e.reason, nil)
		for _, h := range e.headers {
			res.AppendHeader(h)
		}
	}
	if err := tx.Respond(res); err != nil {
		r.log.Debug("register respond", "error", err)
	}
}

func (r *Registrar) register(req *sip.Request) (*sip.Response, error) {
	to := req.To()
	if to == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil {
		return nil, refuse(400, "Bad Request")
	}
	dn := to.Address.User
	// RFC 3261 10.3 step 3 would answer 404 for an address of record that is
	// not ours; authenticating first (and failing with 403, the user can
	// only be a known line) keeps unknown and known lines alike (B7).
	if err := r.authenticate(req, dn); err != nil {
		return nil, err
	}
	if _, ok := r.dir.Line(dn); !ok {
		return nil, refuse(403, "Forbidden")
	}

	contacts, wildcard, err := contactsOf(req)
	if err != nil {
		return nil, err
	}
	defExp, err := r.headerExpires(req)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	now := r.now()
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo

	if wildcard {
		// 10.3 step 6: "*" only with Expires: 0 and no other Contact.
		if len(contacts) > 0 || defExp != 0 {
			return nil, refuse(400, "Bad Request (Contact * needs Expires: 0)")
		}
		for _, b := range r.Bindings(dn) {
			if b.CallID == callID && cseq <= b.CSeq {
				continue
			}
			if err := r.removeBinding(ctx, dn, b.Contact); err != nil {
				return nil, err
			}
		}
		r.log.Info("unregistered all devices", "dn", dn, "source", req.Source())
		r.reset(dn)
		return r.ok(req, dn), nil
	}

	for _, c := range contacts {
		exp := defExp
		if v, ok := c.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, refuse(400, "Bad Request (Contact expires)")
			}
			exp = n
		}
		uri := c.Address.String()
		if prev, ok := r.find(dn, uri); ok && prev.CallID == callID && cseq <= prev.CSeq {
			// 10.3 step 7: a request out of order must not change the binding.
			return nil, refuse(400, "Bad Request (CSeq out of order)")
		}
		if exp == 0 {
			if err := r.removeBinding(ctx, dn, uri); err != nil {
				return nil, err
			}
			r.log.Info("unregistered", "dn", dn, "contact", uri)
			r.reset(dn)
			continue
		}
		if exp < r.cfg.MinExpires {
			// 10.3 step 7: 423 with Min-Expires.
			return nil, refuse(423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(r.cfg.MinExpires)))
		}
		if exp > r.cfg.MaxExpires {
			exp = r.cfg.MaxExpires
		}
		line, _ := r.dir.Line(dn)
		if _, exists := r.find(dn, uri); !exists && len(r.Bindings(dn)) >= line.MaxDevices {
			r.log.Info("register refused: max devices", "dn", dn, "max", line.MaxDevices, "contact", uri)
			return nil, refuse(403, "Forbidden (max devices reached)")
		}
		ua := ""
		if h := req.GetHeader("User-Agent"); h != nil {
			ua = h.Value()
		}
		b := Binding{
			DN: dn, Contact: uri, Source: req.Source(), Transport: strings.ToUpper(req.Transport()),
			CallID: callID, CSeq: cseq, UserAgent: ua, Expires: now.Add(time.Duration(exp) * time.Second),
		}
		if err := r.store.PutRegistration(ctx, b); err != nil {
			return nil, fmt.Errorf("store binding: %w", err)
		}
		prev, existed := r.find(dn, uri)
		if existed && prev.CallID != callID {
			r.log.Info("device restarted (new Call-ID)", "dn", dn, "contact", uri)
			r.reset(dn)
		}
		r.apply(dn, func(bs []Binding) []Binding {
			bs = remove(bs, uri, func(Binding) bool { return true })
			bs = append(bs, b)
			sort.Slice(bs, func(i, j int) bool { return bs[i].Contact < bs[j].Contact })
			return bs
		})
		// A new binding is news for the operator (INFO); a refresh, every
		// few minutes per phone, is not (DEBUG).
		level := slog.LevelInfo
		if existed {
			level = slog.LevelDebug
		}
		r.log.Log(ctx, level, "registered", "dn", dn, "contact", uri, "source", b.Source, "transport", b.Transport, "expires", exp, "refresh", existed)
	}
	return r.ok(req, dn), nil
}

func (r *Registrar) find(dn, contact string) (Binding, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, b := range r.bindings[dn] {
		if b.Contact == contact {
			return b, true
		}
	}
	return Binding{}, false
}

func (r *Registrar) removeBinding(ctx context.Context, dn, contact string) error {
	if err := r.store.DeleteRegistration(ctx, dn, contact); err != nil {
		return fmt.Errorf("delete binding: %w", err)
	}
	r.apply(dn, func(bs []Binding) []Binding {
		return remove(bs, contact, func(Binding) bool { return true })
	})
	return nil
}

// ok builds the 200 listing every current binding (10.3 step 8).
func (r *Registrar) ok(req *sip.Request, dn string) *sip.Response {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := r.now()
	for _, b := range r.Bindings(dn) {
		c := &sip.ContactHeader{}
		if err := sip.ParseUri(b.Contact, &c.Address); err != nil {
			continue
		}
		c.Params = sip.NewParams()
		c.Params.Add("expires", strconv.Itoa(int(b.Expires.Sub(now).Round(time.Second)/time.Second)))
		res.AppendHeader(c)
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
	return res
}

// authenticate checks the digest credentials of a REGISTER (RFC 3261 22.4)
// through auth.Check: bound to REGISTER and its Request-URI, used once,
// throttled. A wrong password gets 403 rather than a new challenge, so a
// phone with a bad password stops instead of looping. An unknown line gets
// the same answers as a known one (401, then 403): a REGISTER does not tell
// which lines exist.
func (r *Registrar) authenticate(req *sip.Request, dn string) error {
	at := r.auth.AttemptOf(req, "Authorization", r.dir.Password, r.HomeOf)
	d := r.auth.Check(at)
	switch {
	case d.Challenge:
		if at.Header != "" {
			r.log.Debug("register: new challenge", "dn", dn, "source", req.Source(), "reason", d.Reason)
		}
		return refuse(401, "Unauthorized", r.auth.Headers("WWW-Authenticate", d.Stale)...)
	case d.Forbidden:
		// The throttle's own line ("authentication failed") is the one
		// per source and interval; this one is for debugging.
		r.log.Debug("register: refused", "dn", dn, "user", d.User, "source", req.Source(), "reason", d.Reason)
		return refuse(403, "Forbidden")
	}
	if d.User != dn {
		r.log.Warn("register: user may not register this line", "dn", dn, "user", d.User, "source", req.Source())
		return refuse(403, "Forbidden")
	}
	return nil
}

// HomeOf reports whether source (ip:port) has the address of one of line
// dn's registered devices (its own bindings, not logins). The throttle
// then does not count a failure there against the account (see
// auth.Attempt.Home); the port is not compared, as a phone over TCP
// connects from a new port each time.
func (r *Registrar) HomeOf(dn, source string) bool {
	host := hostOf(source)
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	for _, b := range r.bindings[dn] {
		if !strings.HasPrefix(b.CallID, mobilityCallID) && hostOf(b.Source) == host && b.Expires.After(now) {
			return true
		}
	}
	return false
}

func hostOf(source string) string {
	if h, _, err := net.SplitHostPort(source); err == nil {
		return h
	}
	return source
}

func (r *Registrar) headerExpires(req *sip.Request) (int, error) {
	h := req.GetHeader("Expires")
	if h == nil {
		return r.cfg.DefaultExpires, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
	if err != nil || n < 0 {
		return 0, refuse(400, "Bad Request (Expires)")
	}
	return n, nil
}

// contactsOf returns the Contact header values; wildcard reports a "*".
func contactsOf(req *sip.Request) ([]*sip.ContactHeader, bool, error) {
	var out []*sip.ContactHeader
	wildcard := false
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, refuse(400, "Bad Request (Contact)")
		}
		if c.Address.Wildcard {
			wildcard = true
			continue
		}
		if c.Address.Host == "" {
			return nil, false, refuse(400, "Bad Request (Contact)")
		}
		out = append(out, c)
	}
	return out, wildcard, nil
}

// All returns the live bindings of every line, sorted by DN and Contact.
func (r *Registrar) All() []Binding {
	r.mu.RLock()
	now := r.now()
	var out []Binding
	for _, bs := range r.bindings {
		for _, b := range bs {
			if b.Expires.After(now) {
				out = append(out, b)
			}
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].DN != out[j].DN {
			return out[i].DN < out[j].DN
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// DropLine removes every binding of a line that was removed from the
// directory (its devices must register again once it is back).
func (r *Registrar) DropLine(ctx context.Context, dn string) error {
	for _, b := range r.Bindings(dn) {
		if err := r.store.DeleteRegistration(ctx, b.DN, b.Contact); err != nil {
			return fmt.Errorf("registrar: drop line %s: %w", dn, err)
		}
	}
	r.apply(dn, func([]Binding) []Binding { return nil })
	return nil
}
