package app

import (
	"context"
	"crypto/subtle"
	"strings"

	"github.com/callbackd/callbackd/internal/b2bua"
	"github.com/callbackd/callbackd/internal/config"
)

// A line's own feature codes, besides Call Back's: forwarding and
// DND-Reject, set from the phone (the common codes of many PBXs). A code is
// a call that ends at once with 603 and a reason phrase saying what is now
// in force; the change is stored like a line changed through the API, and
// Call Back sees it at once (F21, F22).
//
//	*21<DN> forward all calls to DN (a line, or a number of a trunk);
//	        *21 alone: to voicemail; #21 off
//	*67<DN> forward when busy;                                #67 off
//	*61<DN> forward on no answer;                             #61 off
//	*78     DND-Reject on;                                    *79 off
//	*40<id>*<pin> Extension Mobility login (F23);            #40 logout
var forwardCodes = []struct {
	set, clear, name string
	field            func(*config.Line) *string
}{
	{config.CodeForwardAll, config.CodeForwardAllOff, "All", func(l *config.Line) *string { return &l.ForwardAll }},
	{config.CodeForwardBusy, config.CodeForwardBusyOff, "Busy", func(l *config.Line) *string { return &l.ForwardBusy }},
	{config.CodeForwardNoAnswer, config.CodeForwardNoAnswerOff, "No Answer", func(l *config.Line) *string { return &l.ForwardNoAnswer }},
}

const (
	dndOn  = config.CodeDNDOn
	dndOff = config.CodeDNDOff
)

// isLineFeature reports whether dialed is one of these codes.
func isLineFeature(dialed string) bool {
	if dialed == dndOn || dialed == dndOff || dialed == config.CodeLogout || strings.HasPrefix(dialed, config.CodeLogin) {
		return true
	}
	for _, c := range forwardCodes {
		if dialed == c.clear || strings.HasPrefix(dialed, c.set) {
			return true
		}
	}
	return false
}

// lineFeature carries out a code dialed by line caller from device from.
func (a *App) lineFeature(caller, dialed string, from b2bua.Origin) b2bua.Feature {
	refuse := func(reason string) b2bua.Feature { return b2bua.Feature{Code: 603, Reason: reason} }
	switch {
	case dialed == config.CodeLogout:
		return refuse(a.logout(from))
	case strings.HasPrefix(dialed, config.CodeLogin):
		return a.login(strings.TrimPrefix(dialed, config.CodeLogin), from)
	}
	l, ok := a.Directory.Line(caller)
	if !ok {
		return refuse("Not A Line")
	}
	var done string
	switch dialed {
	case dndOn:
		l.DND, done = true, "DND On"
	case dndOff:
		l.DND, done = false, "DND Off"
	}
	for _, c := range forwardCodes {
		switch {
		case done != "":
		case dialed == c.clear:
			*c.field(&l) = ""
			done = "Forward " + c.name + " Off"
		case strings.HasPrefix(dialed, c.set):
			target := strings.TrimPrefix(dialed, c.set)
			if target == "" {
				if a.Config.Calls.VoicemailPilot == "" {
					return refuse("No Voicemail")
				}
				target = config.ForwardVoicemail
			} else if _, known := a.Directory.Line(target); target == caller || !known && !a.External(target) {
				return refuse("Forward Target Invalid")
			} else if !known && !a.mayDialOut(caller, target) {
				// F32: forwarding out is dialing out, by the line's profile.
				a.Log.Info("line feature refused: dial-out not allowed by the line's profile", "dn", caller, "code", dialed)
				return refuse("Forward " + c.name + " Not Allowed")
			}
			*c.field(&l) = target
			done = "Forward " + c.name + " To " + target
		}
	}
	if err := a.PutLine(context.Background(), l, false); err != nil {
		a.Log.Error("line feature not stored", "dn", caller, "code", dialed, "error", err)
		return b2bua.Feature{Code: 500, Reason: "Server Internal Error"}
	}
	a.Log.Info("line feature", "dn", caller, "code", dialed, "now", done)
	return refuse(done)
}

// mayDialOut reports whether line dn may call or forward to the external
// number: its profile's dial_out (F32).
func (a *App) mayDialOut(dn, number string) bool {
	l, ok := a.Directory.Line(dn)
	if !ok {
		return false
	}
	p, ok := a.Config.Profile(l.Profile)
	return ok && p.MayDialOut(number)
}

// login is Extension Mobility's login (F23): *40<id>*<pin> on a phone
// binds the user's line to it. The call backs of the user's line and of
// the phone's own line are cancelled (a login ends the phone's previous
// user, and moves the user's line here).
//
// The PIN is short, so guessing it is throttled (kind "pin") per source
// and per user ID: while blocked, 403 whatever the PIN; a wrong PIN or an
// unknown ID both answer "Login Refused" and count.
func (a *App) login(idPin string, from b2bua.Origin) b2bua.Feature {
	refused := b2bua.Feature{Code: 603, Reason: "Login Refused"}
	id, pin, _ := strings.Cut(idPin, "*")
	account := "user:" + id // not a line's key: user IDs and DNs may look alike
	if a.Guard.Blocked("pin", from.Source, account) > 0 {
		return b2bua.Feature{Code: 403, Reason: "Forbidden"}
	}
	var user *config.User
	for i := range a.Config.Users {
		// Every user's PIN is compared: the work does not tell which IDs exist.
		if u := &a.Config.Users[i]; u.ID == id && subtle.ConstantTimeCompare([]byte(u.PIN), []byte(pin)) == 1 {
			user = u
		}
	}
	if user == nil {
		a.Guard.Failed("pin", from.Source, account, "wrong PIN")
		a.Log.Debug("extension mobility login refused", "user", id, "source", from.Source)
		return refused
	}
	device, ok := a.Registrar.DeviceOf(from.Device, from.Transport, from.Source, from.Contact)
	if !ok {
		a.Log.Warn("extension mobility login refused: not from a registered phone", "user", id, "device", from.Device, "source", from.Source)
		return refused
	}
	a.Guard.Succeeded(from.Source, account)
	if a.logout(from) == "Logged Out" {
		a.Log.Info("extension mobility: the phone's previous user logged out", "source", from.Source)
	}
	a.Callback.Mobility(user.Line, true)
	a.Callback.Mobility(device.DN, true)
	if err := a.Registrar.Login(context.Background(), user.Line, user.ID, device); err != nil {
		a.Log.Error("extension mobility login not stored", "user", id, "error", err)
		return b2bua.Feature{Code: 603, Reason: "Login Failed"}
	}
	return b2bua.Feature{Code: 603, Reason: "Logged In " + user.ID}
}

// logout ends the login on the phone at from (authenticated as its own
// line, from.Device), if any.
func (a *App) logout(from b2bua.Origin) string {
	device, ok := a.Registrar.DeviceOf(from.Device, from.Transport, from.Source, from.Contact)
	if !ok {
		return "Not Logged In"
	}
	dn, ok := a.Registrar.LoginOn(from.Device, from.Transport, from.Source, from.Contact)
	if !ok {
		return "Not Logged In"
	}
	a.Callback.Mobility(dn, false)
	a.Callback.Mobility(device.DN, false)
	if err := a.Registrar.Logout(context.Background(), dn, device); err != nil {
		a.Log.Error("extension mobility logout not stored", "dn", dn, "error", err)
		return "Logout Failed"
	}
	return "Logged Out"
}
