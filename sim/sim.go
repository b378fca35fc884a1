// Package sim simulates Companies House (the companies stream and the REST API) for demos, tests and load.
//
// The simulator keeps its own truth and imports no other package of chwatch, so a
// misreading shared by both sides cannot make them agree. Everything it publishes is a
// function of Config.Seed, the event index and, for published_at, the clock.
//
// Decisions worth knowing:
//
//   - A "hybrid" event (company_status "active" with no company_status_detail for a
//     company that was in strike-off) is a real exit: the simulator's truth is that the
//     company left strike-off, and GET /company/{n} agrees. On the wire such an event is
//     indistinguishable from any ordinary return to active.
//   - A stale copy re-publishes the company's previous version (its old data and old
//     etag) with a published_at strictly older than the event that set the company's
//     current state. It never changes truth.
//   - A content duplicate re-publishes the company's current data with the same etag.
//   - A deleted event carries only resource_kind, resource_uri, resource_id and event.
//     Only companies already seen on the stream are deleted; the next event for a
//     deleted company is always a real change (new etag), which undeletes it.
//   - With Rate 0, live events are generated on demand: when a stream reader reaches
//     the live edge, or WaitPublished asks for them.
package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a simulator. Zero values take the defaults named on each field.
type Config struct {
	Seed           int64         // everything is a function of Seed
	Companies      int           // size of the simulated register (default 2000, at most 1,000,000)
	StrikeOffShare float64       // share of companies in strike-off at start and over time (default 0.07, at most 0.35)
	Events         int           // total events the log will ever hold; 0 = unbounded
	Rate           float64       // live events per second after the backlog; 0 = as fast as readers ask
	Backlog        int           // events that already exist at start (replayable instantly)
	FirstTimepoint int64         // timepoint of the first event (default 47,000,000)
	Heartbeat      time.Duration // bare "\n" interval on every stream connection (default 30s)
	Retention      int           // events kept for replay; an older ?timepoint answers 416; 0 = keep all
	StreamKey      string        // required Basic-auth user name on the stream; "" accepts any
	APIKey         string        // required Basic-auth user name on REST; "" accepts any
	APIRateLimit   int           // REST requests per APIRateWindow (default 600); past it 429
	APIRateWindow  time.Duration // fixed REST budget window (default 5m)
	Faults         Faults
	API            APIFaults        // REST faults and answer shapes
	Now            func() time.Time // clock for published_at, the Date header, rate-limit windows and outages (default time.Now)
}

// Faults injects failures into the stream. Every counter is per connection (lines)
// or per Sim (connect attempts) and starts at 1, so the Nth occurrence is the first
// fault: deterministic for a given sequence of requests. 0 turns a fault off.
// "Line" always means a real event line of the log; injected lines and heartbeats are
// not counted.
type Faults struct {
	CutEvery       int           // the Nth, 2Nth... event line of a connection is cut: half its bytes are written and flushed, then the TCP connection is aborted
	StallEvery     int           // after the Nth, 2Nth... event line, nothing at all (no heartbeat) is sent for StallFor
	StallFor       time.Duration // default 2m (longer than a 90s idle timeout)
	Status5xxEvery int           // the Nth, 2Nth... connect attempt answers 503, then 502, then 504 (rotating) with a small HTML body
	Status429Every int           // the Nth, 2Nth... connect attempt answers 429 "client has been rate-limited"
	Status401Every int           // the Nth, 2Nth... connect attempt answers 401 {"error":"Invalid Authorization","type":"ch:service"}
	NotJSONEvery   int           // after the Nth, 2Nth... event line, a line that is not JSON (and holds no timepoint) is sent
	OversizeEvery  int           // after the Nth, 2Nth... event line, the next event is first sent as an oversized line (see OversizeBytes), then normally
	OversizeBytes  int           // length of an oversized line including its "\n" (default 5 MiB)
	ReplayEvery    int           // after the Nth, 2Nth... event line, that same line is sent again (a duplicate timepoint)
	AbsurdEvery    int           // after the Nth, 2Nth... event line, a copy of it with timepoint 2^63-1 and an unknown event type is sent
	TrickleEvery   int           // after the Nth, 2Nth... event line, the next one is sent a byte at a time, TrickleDelay apart
	TrickleDelay   time.Duration // default 1s
}

// APIFaults injects failures into the REST API and shapes its answers. The
// request counters count every REST request the simulator receives, from 1,
// so the Nth request is the first fault: deterministic for a given sequence
// of requests. 0 turns a fault off. Gateway errors (bursts and outages) and
// 403s are answered before the rate limiter, as a gateway or firewall in
// front of it would: they spend no budget and carry no X-Ratelimit headers.
type APIFaults struct {
	Status5xxEvery  int           // the Nth, 2Nth... REST request begins a burst of Status5xxBurst gateway errors (503, 502, 504 in turn, small HTML bodies)
	Status5xxBurst  int           // gateway errors per burst (default 1)
	SlowEvery       int           // the Nth, 2Nth... REST request is answered only after SlowFor (a client with a shorter timeout sees a timeout)
	SlowFor         time.Duration // default 1m
	Status403Every  int           // the Nth, 2Nth... REST request answers 403, as Companies House does to an IP it dislikes
	OutageAfter     time.Duration // an outage starts this long after New (by Config.Now)...
	OutageFor       time.Duration // ...and lasts this long: every REST request answers a gateway error (0: none; see also Sim.Outage)
	PageCap         int           // the largest items_per_page the officer and PSC lists and filing histories grant (default 100; a gateway may cap it lower)
	RemainingHeader bool          // spell the budget header X-Ratelimit-Remaining, as one Companies House API does
	OverlapPages    bool          // every officer or PSC page after the first begins with the previous page's last item (an unstable sort order): a client must de-duplicate by links.self
}

// An oversized line is the next event's own line with one extra member: inside
// "data", before the other members, "sim_padding" holds a string of "x" long enough
// to make the whole line exactly OversizeBytes bytes including "\n" (for a deleted
// event, which has no data, the member sits in the envelope just before "event").
// It is a syntactically valid envelope whose "event" object (the real timepoint and
// published_at of that next event) comes last, so a client can recover the timepoint
// from the tail. The normal line for the same timepoint follows it.

// Defaults.
const (
	DefaultCompanies      = 2000
	DefaultStrikeOffShare = 0.07
	DefaultFirstTimepoint = 47_000_000
	DefaultHeartbeat      = 30 * time.Second
	DefaultAPIRateLimit   = 600
	DefaultAPIRateWindow  = 5 * time.Minute
	DefaultStallFor       = 2 * time.Minute
	DefaultOversizeBytes  = 5 << 20
	DefaultSlowFor        = time.Minute
	DefaultPageCap        = 100
	DefaultTrickleDelay   = time.Second
	maxCompanies          = 1_000_000
	maxStrikeOffShare     = 0.35
	maxConnection         = 24 * time.Hour
)

// ErrNeverPublished is returned by WaitPublished for a timepoint beyond the end of a
// bounded log.
var ErrNeverPublished = errors.New("timepoint is beyond the end of the simulated log")

// Sim is a simulated Companies House. Create it with New; it is safe for concurrent use.
type Sim struct {
	cfg     Config
	seed    uint64
	statics []static
	byNum   map[string]uint32

	enterProb float64 // per status event, the chance an active company enters strike-off
	started   time.Time
	start0    int64   // Now() at New, unix seconds
	spacingNs float64 // backlog spacing

	maxConn time.Duration // connection lifetime (24h; tests shorten it)

	attempts atomic.Int64 // GET /companies attempts
	streamGW atomic.Int64 // stream gateway errors sent, for their rotation

	mu          sync.Mutex
	cos         []company
	recs        []rec // recs[0] is event index recBase
	recBase     int64
	n           int64 // events generated (published) so far
	lastPub     uint32
	transitions []Transition
	changed     chan struct{} // closed and replaced whenever events are published

	restN  atomic.Int64 // REST requests received
	restGW atomic.Int64 // REST gateway errors sent, for their rotation

	rlMu       sync.Mutex
	rl         map[string]*rateWindow // by API key: the budget belongs to the key
	outage     [2]time.Time           // REST answers gateway errors in [from, to)
	byStatus   map[int]int64
	byEndpoint map[string]int64
}

// Truth is the simulator's own view of what it has published so far.
type Truth struct {
	LastTimepoint int64                   // highest timepoint published; FirstTimepoint-1 before any
	Timepoints    []int64                 // every distinct timepoint published, ascending
	Companies     map[string]CompanyTruth // companies seen in at least one published event, by number
	Transitions   []Transition            // strike-off entries and exits caused by published events, in order
}

// CompanyTruth is a company's state after the last published event that changed it.
type CompanyTruth struct {
	Name, Status, Detail, Etag string
	Deleted                    bool
	InStrikeOff                bool
}

// Transition is an entry to (Entered) or exit from strike-off at Timepoint. A
// company first seen already in strike-off counts as entering.
type Transition struct {
	Timepoint     int64
	CompanyNumber string
	Entered       bool
}

// New validates cfg, fills its defaults and builds the register and the backlog.
func New(cfg Config) (*Sim, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Sim{
		cfg:      cfg,
		seed:     uint64(cfg.Seed),
		started:  time.Now(),
		start0:   cfg.Now().Unix(),
		maxConn:  maxConnection,
		changed:  make(chan struct{}),
		rl:       map[string]*rateWindow{},
		byStatus: map[int]int64{}, byEndpoint: map[string]int64{},
	}
	if cfg.API.OutageFor > 0 {
		from := cfg.Now().Add(cfg.API.OutageAfter)
		s.outage = [2]time.Time{from, from.Add(cfg.API.OutageFor)}
	}
	s.spacingNs = 1e8
	if cfg.Rate > 0 {
		s.spacingNs = 1e9 / cfg.Rate
	}
	s.buildRegister()
	s.mu.Lock()
	s.generateLocked(int64(cfg.Backlog))
	s.mu.Unlock()
	return s, nil
}

func (c *Config) fill() error {
	if c.Companies == 0 {
		c.Companies = DefaultCompanies
	}
	if c.Companies < 1 || c.Companies > maxCompanies {
		return fmt.Errorf("sim: Companies must be between 1 and %d, got %d", maxCompanies, c.Companies)
	}
	if c.StrikeOffShare == 0 {
		c.StrikeOffShare = DefaultStrikeOffShare
	}
	if c.StrikeOffShare < 0 || c.StrikeOffShare > maxStrikeOffShare {
		return fmt.Errorf("sim: StrikeOffShare must be in (0, %.2f], got %g", maxStrikeOffShare, c.StrikeOffShare)
	}
	if c.Events < 0 {
		return fmt.Errorf("sim: Events must be >= 0 (0 = unbounded), got %d", c.Events)
	}
	if c.Rate < 0 {
		return fmt.Errorf("sim: Rate must be >= 0 events per second, got %g", c.Rate)
	}
	if c.Backlog < 0 || (c.Events > 0 && c.Backlog > c.Events) {
		return fmt.Errorf("sim: Backlog must be between 0 and Events (%d), got %d", c.Events, c.Backlog)
	}
	if c.FirstTimepoint == 0 {
		c.FirstTimepoint = DefaultFirstTimepoint
	}
	if c.FirstTimepoint < 1 {
		return fmt.Errorf("sim: FirstTimepoint must be positive, got %d", c.FirstTimepoint)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.Heartbeat < 0 {
		return fmt.Errorf("sim: Heartbeat must be positive, got %s", c.Heartbeat)
	}
	if c.Retention < 0 {
		return fmt.Errorf("sim: Retention must be >= 0 (0 = keep all), got %d", c.Retention)
	}
	if c.APIRateLimit == 0 {
		c.APIRateLimit = DefaultAPIRateLimit
	}
	if c.APIRateLimit < 0 {
		return fmt.Errorf("sim: APIRateLimit must be positive, got %d", c.APIRateLimit)
	}
	if c.APIRateWindow == 0 {
		c.APIRateWindow = DefaultAPIRateWindow
	}
	if c.APIRateWindow < time.Second {
		return fmt.Errorf("sim: APIRateWindow must be at least 1s, got %s", c.APIRateWindow)
	}
	f := &c.Faults
	for name, v := range map[string]int{
		"CutEvery": f.CutEvery, "StallEvery": f.StallEvery, "Status5xxEvery": f.Status5xxEvery,
		"Status429Every": f.Status429Every, "Status401Every": f.Status401Every, "NotJSONEvery": f.NotJSONEvery,
		"OversizeEvery": f.OversizeEvery, "ReplayEvery": f.ReplayEvery, "OversizeBytes": f.OversizeBytes,
		"AbsurdEvery": f.AbsurdEvery, "TrickleEvery": f.TrickleEvery,
	} {
		if v < 0 {
			return fmt.Errorf("sim: Faults.%s must be >= 0 (0 = off), got %d", name, v)
		}
	}
	if f.StallFor == 0 {
		f.StallFor = DefaultStallFor
	}
	if f.OversizeBytes == 0 {
		f.OversizeBytes = DefaultOversizeBytes
	}
	a := &c.API
	for name, v := range map[string]int{
		"Status5xxEvery": a.Status5xxEvery, "Status5xxBurst": a.Status5xxBurst, "SlowEvery": a.SlowEvery,
		"Status403Every": a.Status403Every, "PageCap": a.PageCap,
	} {
		if v < 0 {
			return fmt.Errorf("sim: API.%s must be >= 0 (0 = off or the default), got %d", name, v)
		}
	}
	if a.SlowFor < 0 || a.OutageAfter < 0 || a.OutageFor < 0 {
		return fmt.Errorf("sim: API.SlowFor, OutageAfter and OutageFor must be >= 0")
	}
	if a.Status5xxBurst == 0 {
		a.Status5xxBurst = 1
	}
	if a.SlowFor == 0 {
		a.SlowFor = DefaultSlowFor
	}
	if a.PageCap == 0 {
		a.PageCap = DefaultPageCap
	}
	if f.TrickleDelay == 0 {
		f.TrickleDelay = DefaultTrickleDelay
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Truth returns the simulator's view of everything published so far.
func (s *Sim) Truth() Truth {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	t := Truth{
		LastTimepoint: s.cfg.FirstTimepoint + s.n - 1,
		Timepoints:    make([]int64, s.n),
		Companies:     make(map[string]CompanyTruth),
		Transitions:   append([]Transition(nil), s.transitions...),
	}
	for i := range t.Timepoints {
		t.Timepoints[i] = s.cfg.FirstTimepoint + int64(i)
	}
	for i := range s.cos {
		c := &s.cos[i]
		if !c.seen {
			continue
		}
		d := detailOf(c.cur.status)
		t.Companies[s.statics[i].num()] = CompanyTruth{
			Name:        s.companyName(uint32(i), c.cur.name),
			Status:      statusOf(c.cur.status),
			Detail:      d,
			Etag:        s.etag(uint32(i), c.cur.rev),
			Deleted:     c.deleted,
			InStrikeOff: !c.deleted && c.cur.status == stStrikeOff,
		}
	}
	return t
}

// WaitPublished blocks until the log holds timepoint tp (generating it when Rate is 0),
// ctx is done, or tp lies beyond the end of a bounded log (ErrNeverPublished).
func (s *Sim) WaitPublished(ctx context.Context, tp int64) error {
	for {
		s.mu.Lock()
		idx := tp - s.cfg.FirstTimepoint
		if s.cfg.Events > 0 && idx >= int64(s.cfg.Events) {
			s.mu.Unlock()
			return fmt.Errorf("wait for timepoint %d: %w (last is %d)", tp, ErrNeverPublished, s.cfg.FirstTimepoint+int64(s.cfg.Events)-1)
		}
		if s.cfg.Rate == 0 && idx >= s.n {
			s.generateLocked(idx + 1)
		}
		s.advanceLocked()
		if idx < s.n {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		due := s.nextDueLocked()
		s.mu.Unlock()
		t := time.NewTimer(due)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// advanceLocked publishes the live events that are due by now when Rate > 0.
func (s *Sim) advanceLocked() {
	if s.cfg.Rate <= 0 {
		return
	}
	target := int64(s.cfg.Backlog) + int64(time.Since(s.started).Seconds()*s.cfg.Rate)
	s.generateLocked(target)
}

// nextDueLocked is how long until the next live event is due (Rate > 0), or a
// fallback poll interval.
func (s *Sim) nextDueLocked() time.Duration {
	if s.cfg.Rate <= 0 || (s.cfg.Events > 0 && s.n >= int64(s.cfg.Events)) {
		return time.Hour
	}
	k := s.n - int64(s.cfg.Backlog) + 1 // live events needed
	due := s.started.Add(time.Duration(float64(k) / s.cfg.Rate * 1e9))
	d := time.Until(due)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}

// oldestLocked is the oldest timepoint still kept for replay.
func (s *Sim) oldestLocked() int64 {
	o := s.recBase
	if r := int64(s.cfg.Retention); r > 0 && s.n-r > o {
		o = s.n - r
	}
	return s.cfg.FirstTimepoint + o
}
