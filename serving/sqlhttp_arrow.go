package serving

import (
	"bufio"
	"net/http"
	"strconv"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
)

// arrowHTTPSink writes POST /v1/sql's Arrow IPC stream from DuckDB's own
// record batches (StreamArrow): no value is converted one by one.
type arrowHTTPSink struct {
	h   http.Header
	buf *bufio.Writer
	ipc *ipc.Writer
}

func (s *arrowHTTPSink) Schema(sc *arrow.Schema, fr Freshness) error {
	s.h.Set("Content-Type", MediaArrow)
	s.h.Set("X-Gridlake-Batch-Version", strconv.FormatInt(fr.BatchVersion, 10))
	s.h.Set("X-Gridlake-Speed-Lag", strconv.FormatInt(fr.SpeedLag, 10))
	s.ipc = ipc.NewWriter(s.buf, ipc.WithSchema(sc))
	return nil
}

func (s *arrowHTTPSink) Record(rec arrow.Record) error { return s.ipc.Write(rec) }

// finish ends the stream after the last batch.
func (s *arrowHTTPSink) finish() error {
	if err := s.ipc.Close(); err != nil {
		return err
	}
	return s.buf.Flush()
}
