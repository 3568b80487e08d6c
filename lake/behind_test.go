package lake

import (
	"errors"
	"testing"
)

func TestCheckPartitions_FewerPartitionsThanTheCut(t *testing.T) {
	m := &Manifest{Version: 4, Cut: Cut{"t": {5, 0, 7}}}
	var bc *BehindCutError
	if err := CheckPartitions("batch", m, "t", 2); !errors.As(err, &bc) || bc.Partition != 2 || bc.Cut != 7 || !bc.Missing {
		t.Fatalf("two partitions left of a cut on three: %v", err)
	}
	if err := CheckPartitions("batch", m, "t", 3); err != nil {
		t.Fatal(err)
	}
	if err := CheckPartitions("batch", &Manifest{Cut: Cut{"t": {5, 0}}}, "t", 1); err != nil {
		t.Fatalf("a missing partition the cut never took from is no loss: %v", err)
	}
	if err := CheckBehind("speed", m, "t", 0, 5); err != nil {
		t.Fatalf("newest offset at the cut: %v", err)
	}
	if err := CheckBehind("speed", m, "t", 0, 4); !errors.As(err, &bc) || bc.Newest != 4 {
		t.Fatalf("newest offset below the cut: %v", err)
	}
}
