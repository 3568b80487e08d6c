package alerts

// Retired returns a resolved transition, at the partition's watermark at,
// for every alert firing in ps under a rule of old that rules no longer
// has (by name and kind): a rules reload drops such a rule's state, and
// without it the alert would stay firing wherever it was delivered. A
// reload happens at a wall-clock moment, so these transitions, unlike
// the rules' own, depend on when it came.
func Retired(old, rules []Rule, ps PartState, at int64) []Transition {
	kept := map[string]Kind{}
	for _, r := range rules {
		kept[r.Name] = r.Kind
	}
	byName := map[string]Rule{}
	for _, r := range old {
		if k, ok := kept[r.Name]; !ok || k != r.Kind {
			byName[r.Name] = r
		}
	}
	if len(byName) == 0 {
		return nil
	}
	var out []Transition
	retire := func(name, subject string, start int64) {
		if r, ok := byName[name]; ok {
			t := r.transition(subject, start, max(at, start), Resolved, 0, "", "")
			t.Summary = subject + ": rule " + name + " was removed from the rules file"
			out = append(out, t)
		}
	}
	for _, b := range ps.Batts {
		for _, rs := range b.Rules {
			if phase(rs.Phase) == firing {
				retire(rs.Rule, b.ID, rs.Start)
			}
		}
	}
	for _, rm := range ps.Rooms {
		for _, d := range rm.Devices {
			for _, name := range d.Firing {
				retire(name, rm.ID+"/"+d.ID, d.Start)
			}
		}
	}
	return out
}
