package company

import "github.com/VictoriaMetrics/metrics"

// Transitions counts committed strike-off transitions as
// chwatch_strike_off_transitions_total{change}. A process holds one, on the
// Applier its writers share (the stream and the REST workers), so the series
// counts every transition whichever source saw it. Writers add after their
// transaction commits: a rolled-back change never happened.
type Transitions struct {
	entered, left *metrics.Counter
}

// NewTransitions registers the counters in m.
func NewTransitions(m *metrics.Set) *Transitions {
	name := func(c string) string { return `chwatch_strike_off_transitions_total{change="` + c + `"}` }
	return &Transitions{entered: m.NewCounter(name(EnteredStrikeOff)), left: m.NewCounter(name(LeftStrikeOff))}
}

// Add counts n committed changes of kind change; changes that are not
// strike-off transitions, and a nil t, count nothing.
func (t *Transitions) Add(change string, n int64) {
	if t == nil {
		return
	}
	switch change {
	case EnteredStrikeOff:
		t.entered.AddInt64(n)
	case LeftStrikeOff:
		t.left.AddInt64(n)
	}
}
