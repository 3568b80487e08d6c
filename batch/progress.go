package batch

// Progress receives how much of a long step is done out of its total:
// records for a compaction, hours for a recompute. A nil Progress is not
// called. jobs and the command line pass theirs through as this type.
type Progress func(done, total int64)
