package callback

import (
	"fmt"
	"testing"

	"github.com/callbackd/callbackd/internal/store"
)

// B3: the stored requests decoded on every core come back in their order;
// a row that cannot be read is reported (the start deletes it), not kept.
func TestB3_DecodeStoredRequests(t *testing.T) {
	var stored []store.Request
	for id := int64(1); id <= 1001; id++ {
		data := fmt.Sprintf(`{"id":%d,"a":"20%02d","b":"3001"}`, id, id%100)
		if id == 7 || id == 500 {
			data = `{"id":` // cut short
		}
		stored = append(stored, store.Request{ID: id, Data: []byte(data)})
	}
	reqs, bad := decodeRequests(stored)
	if len(bad) != 2 || bad[0].id != 7 || bad[1].id != 500 {
		t.Fatalf("unreadable: %+v, want ids 7 and 500", bad)
	}
	if len(reqs) != 999 {
		t.Fatalf("%d requests decoded, want 999", len(reqs))
	}
	want := int64(1)
	for _, r := range reqs {
		if want == 7 || want == 500 {
			want++
		}
		if r.ID != want || r.A != fmt.Sprintf("20%02d", want%100) {
			t.Fatalf("request %+v, want id %d in order", r, want)
		}
		want++
	}
	for i, r := range stored {
		if r.Data != nil {
			t.Fatalf("row %d's bytes kept after decoding", i)
		}
	}
}
