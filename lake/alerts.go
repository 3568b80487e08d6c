package lake

import "fmt"

// AlertStateKey is where a speed group keeps its alert evaluators' state:
// one object, read and merged with a conditional put by each process for
// the partitions it owns, so a restarted process resumes alerting from it
// instead of from nothing.
func AlertStateKey(group string) string {
	return fmt.Sprintf("_speed/%s/alerts.json", group)
}
