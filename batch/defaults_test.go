package batch

import (
	"testing"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/lake"
)

// TestCompactorDefaultsMatchConfig: a compactor built without options
// behaves as one built from the default configuration, so tests, benches
// and processes compact alike.
func TestCompactorDefaultsMatchConfig(t *testing.T) {
	c := NewCompactor(CompactOptions{})
	if want := config.Default().Batch.Concurrency; c.o.Concurrency != want {
		t.Errorf("default concurrency %d, config's default %d", c.o.Concurrency, want)
	}
	if want := config.Default().Batch.DLQMaxValueBytes; c.o.LetterValueBytes != want {
		t.Errorf("default dead-letter value bound %d, config's default %d", c.o.LetterValueBytes, want)
	}
	if want := int64(config.Default().Batch.DLQMaxRunBytes); c.o.MaxLetterBytes != want {
		t.Errorf("default dead-letter run bound %d, config's default %d", c.o.MaxLetterBytes, want)
	}
	if c.o.SpeedGroup != lake.SpeedGroup {
		t.Errorf("default speed group %q, want %q", c.o.SpeedGroup, lake.SpeedGroup)
	}
}
