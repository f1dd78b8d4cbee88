// Command seedrequests writes N open Call Back requests (and the config with
// their lines) for load runs: callers 200001.., each with one CCNR request
// on one of a few lines 3001.. that did not answer (they wait for the end
// of its next call: nothing fires at start) (F5: one request per caller, many per
// callee). Used by bench/load/run.sh restore.
//
//	go run ./bench/seedrequests -n 100000 -db DIR/data/callbackd.db -config DIR/lines.toml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/callbackd/callbackd/internal/engine"
	"github.com/callbackd/callbackd/internal/store"
	"github.com/callbackd/callbackd/internal/store/sqlite"
)

func main() {
	n := flag.Int("n", 100000, "open requests to store")
	callees := flag.Int("callees", 10, "busy lines the requests wait on")
	db := flag.String("db", "data/callbackd.db", "SQLite file")
	cfg := flag.String("config", "lines.toml", "TOML file to write the [[line]] tables to")
	flag.Parse()

	f, err := os.Create(*cfg)
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= *callees; i++ {
		fmt.Fprintf(f, "[[line]]\ndn = \"%d\"\npassword = \"p%d\"\nbusy_trigger = 100\n", 3000+i, 3000+i)
	}
	for i := 1; i <= *n; i++ {
		fmt.Fprintf(f, "[[line]]\ndn = \"%d\"\npassword = \"p%d\"\n", 200000+i, 200000+i)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}

	st, err := sqlite.Open(*db)
	if err != nil {
		log.Fatal(err)
	}
	now := time.Now()
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 64; w++ { // concurrent writers fill the group commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := engine.Request{
					ID: int64(i), A: fmt.Sprint(200000 + i), B: fmt.Sprint(3001 + i%*callees),
					Kind: engine.CCNR, State: engine.Active, Created: now, Expires: now.Add(time.Hour),
				}
				data, _ := json.Marshal(r)
				if err := st.PutRequest(ctx, store.Request{ID: r.ID, Data: data}); err != nil {
					log.Fatal(err)
				}
				// A is registered: a caller without a device loses its
				// request at start (F25).
				if err := st.PutRegistration(ctx, register(r.A, now)); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	for i := 1; i <= *callees; i++ {
		if err := st.PutRegistration(ctx, register(fmt.Sprint(3000+i), now)); err != nil {
			log.Fatal(err)
		}
	}
	for i := 1; i <= *n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored %d requests in %s\n", *n, time.Since(now).Round(time.Millisecond))
}

func register(dn string, now time.Time) store.Registration {
	return store.Registration{
		DN: dn, Contact: "sip:" + dn + "@127.0.0.1:5999", Source: "127.0.0.1:5999", Transport: "UDP",
		CallID: "seed-" + dn, CSeq: 1, Expires: now.Add(time.Hour),
	}
}
