package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Two databases of the shared server are separate and take writes.
func TestDBsAreSeparate(t *testing.T) {
	ctx := context.Background()
	for range 2 {
		c, err := pgx.Connect(ctx, DB(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, `CREATE TABLE x (a int); INSERT INTO x VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
}
