package cluster

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Member is one instance as the database last saw it.
type Member struct {
	Name     string    `json:"name"`
	Priority int       `json:"priority"`
	SIP      string    `json:"sip"`
	Seen     time.Time `json:"seen"` // its last heartbeat
	Live     bool      `json:"live"` // heartbeat within a lease
	Active   bool      `json:"active"`
}

// Takeover is one grant of the lease.
type Takeover struct {
	Epoch    int64     `json:"epoch"`
	Holder   string    `json:"holder"`
	Previous string    `json:"previous"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"` // first, lease expired, handover
}

// Status is the cluster as the API and the admin page show it (F37).
type Status struct {
	Name      string     `json:"name"`   // this instance
	Active    string     `json:"active"` // the lease's holder
	Since     time.Time  `json:"since"`  // when it took the lease
	Epoch     int64      `json:"epoch"`
	Members   []Member   `json:"members"`   // by priority, then name
	Takeovers []Takeover `json:"takeovers"` // the last ten, newest first
	Total     int64      `json:"takeovers_total"`
}

// Status reads the cluster's state.
func (e *Elector) Status(ctx context.Context) (Status, error) {
	st := Status{Name: e.c.Name, Members: []Member{}, Takeovers: []Takeover{}}
	if err := e.db.QueryRow(ctx, `SELECT holder, since, epoch FROM cluster_lease WHERE id = 1`).
		Scan(&st.Active, &st.Since, &st.Epoch); err != nil {
		return st, err
	}
	rows, err := e.db.Query(ctx, `SELECT name, priority, sip, seen_at, seen_at > clock_timestamp() - $1::interval
		FROM cluster_members ORDER BY priority, name`, e.lease())
	if err != nil {
		return st, err
	}
	var m Member
	if _, err := pgx.ForEachRow(rows, []any{&m.Name, &m.Priority, &m.SIP, &m.Seen, &m.Live}, func() error {
		m.Active = m.Name == st.Active
		st.Members = append(st.Members, m)
		return nil
	}); err != nil {
		return st, err
	}
	rows, err = e.db.Query(ctx, `SELECT epoch, holder, previous, at, reason FROM cluster_takeovers ORDER BY epoch DESC LIMIT 10`)
	if err != nil {
		return st, err
	}
	var t Takeover
	if _, err := pgx.ForEachRow(rows, []any{&t.Epoch, &t.Holder, &t.Previous, &t.At, &t.Reason}, func() error {
		st.Takeovers = append(st.Takeovers, t)
		return nil
	}); err != nil {
		return st, err
	}
	err = e.db.QueryRow(ctx, `SELECT count(*) FROM cluster_takeovers`).Scan(&st.Total)
	return st, err
}
