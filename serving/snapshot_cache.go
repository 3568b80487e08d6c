package serving

import (
	"context"
	"sync"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/views"
)

// fleetFileCache holds the rows of the fleet view files of one snapshot:
// the files of a manifest version never change, and a fleet query of the
// last hour would otherwise read the same files through DuckDB every time.
// It holds at most the manifest's fleet files (a few dozen rows each).
type fleetFileCache struct {
	mu    sync.Mutex
	files map[string][]agg.FleetWindow // key+etag -> rows
}

// read calls fn with every row of files, reading through rd only the
// files not held yet.
func (c *fleetFileCache) read(ctx context.Context, rd *views.Reader, files []lake.ViewFile, fn func(agg.FleetWindow)) error {
	if c == nil {
		return rd.ReadFleet(ctx, files, fn)
	}
	for _, f := range files {
		id := f.Key + "\x00" + f.ETag
		c.mu.Lock()
		rows, ok := c.files[id]
		c.mu.Unlock()
		if !ok {
			rows = []agg.FleetWindow{}
			if err := rd.ReadFleet(ctx, []lake.ViewFile{f}, func(w agg.FleetWindow) { rows = append(rows, w) }); err != nil {
				return err
			}
			c.mu.Lock()
			if c.files == nil {
				c.files = map[string][]agg.FleetWindow{}
			}
			c.files[id] = rows
			c.mu.Unlock()
		}
		for _, w := range rows {
			fn(w)
		}
	}
	return nil
}
