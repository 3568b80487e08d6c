package serving

import (
	"errors"
	"net/http"

	"github.com/gridlake/gridlake/objstore"
)

// ErrUnavailable means no exact answer can be given now: the object store
// is unreachable and the speed layer moved past the last loaded batch
// version. The API answers 503.
var ErrUnavailable = errors.New("no exact answer now")

// errStatus is the HTTP status of a failed answer: 503 with Retry-After
// when the store is unreachable or no exact answer can be given for now,
// else 500.
func errStatus(w http.ResponseWriter, err error) int {
	if errors.Is(err, ErrUnavailable) || objstore.IsUnavailable(err) {
		w.Header().Set("Retry-After", "1")
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
