package sim

import "time"

// Company statuses the simulator models. Other values of the open enums appear only
// as static states (liquidation, administration).
const (
	stActive uint8 = iota
	stStrikeOff
	stDissolved
	stLiquidation
	stAdministration
)

func statusOf(st uint8) string {
	switch st {
	case stDissolved:
		return "dissolved"
	case stLiquidation:
		return "liquidation"
	case stAdministration:
		return "administration"
	}
	return "active"
}

func detailOf(st uint8) string {
	if st == stStrikeOff {
		return "active-proposal-to-strike-off"
	}
	return ""
}

// Event kinds, kept in rec.kind (low bits); kFieldsChanged marks an event carrying
// event.fields_changed.
const (
	kAddr uint8 = iota + 1
	kAcct
	kSIC
	kRename
	kConf
	kEnter
	kExitActive // the hybrid shape: active, no detail
	kDissolve
	kRestore
	kUndelete
	kDup
	kStale
	kDeleted

	kFieldsChanged uint8 = 0x80
)

// version is a company's content: every field of the profile is a function of the
// company and these counters, so an event is re-rendered from 20 bytes.
type version struct {
	rev                         uint32 // etag source; unique per company version
	orig                        uint32 // unix seconds of the event that created it
	name, addr, sic, acct, conf uint16
	status                      uint8
}

// rec is one event of the log.
type rec struct {
	company uint32
	v       version
	pub     uint32 // published_at, unix seconds
	kind    uint8
}

// company is the mutable state of one register entry.
type company struct {
	cur, prev version
	srcPub    uint32 // published_at of the event that last changed truth
	seen      bool   // appeared in a published event
	// enteredPub is published_at of the event that last moved the company
	// into strike-off (0: it was there from the start), entries how many
	// did: its filing history follows them (sim/filings.go).
	enteredPub uint32
	entries    uint8
	hasPrev    bool
	deleted    bool
}

// static is what never changes about a company.
type static struct {
	number [8]byte
	typ    uint8
	juris  uint8
	h      uint64 // per-company hash for derived constants
}

func (st *static) num() string { return string(st.number[:]) }

// Domain tags keep the hash streams apart.
const (
	tagCompany uint64 = iota + 1
	tagEvent
	tagName
	tagAddr
	tagEtag
	tagSIC
	tagEnv
	tagOfficers
	tagPrevName
)

func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func h3(a, b, c uint64) uint64 { return mix(mix(mix(a)^b) ^ c) }

func h4(a, b, c, d uint64) uint64 { return mix(h3(a, b, c) ^ d) }

// rng is splitmix64.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int      { return int(r.next() % uint64(n)) }
func (r *rng) float() float64      { return float64(r.next()>>11) / (1 << 53) }
func pick[T any](r *rng, xs []T) T { return xs[r.intn(len(xs))] }

// Company types and jurisdictions.
var (
	types = []string{"ltd", "plc", "llp", "private-limited-guarant-nsc", "private-unlimited", "private-limited-guarant-nsc-limited-exemption"}
	juris = []string{"england-wales", "scotland", "northern-ireland", "wales"}
)

const (
	tyLtd uint8 = iota
	tyPlc
	tyLLP
	tyGuarant
	tyUnlimited
	tyGuarantExempt
)

func (s *Sim) buildRegister() {
	n := s.cfg.Companies
	s.statics = make([]static, n)
	s.cos = make([]company, n)
	s.byNum = make(map[string]uint32, n)
	off := mix(s.seed)
	p := s.cfg.StrikeOffShare
	for i := range n {
		h := h3(s.seed, tagCompany, uint64(i))
		st := &s.statics[i]
		st.h = h
		u := h % 100
		digits := (uint64(i)*7919 + off%1_000_000) // unique per prefix for i < 1e6
		var prefix string
		width := 6
		switch {
		case u < 78:
			prefix, width = "0", 7
			digits %= 10_000_000
			st.juris = 0
			if (h>>8)%10 == 0 {
				st.juris = 3
			}
			switch v := (h >> 16) % 100; {
			case v < 84:
				st.typ = tyLtd
			case v < 87:
				st.typ = tyPlc
			case v < 94:
				st.typ = tyGuarant
			case v < 97:
				st.typ = tyGuarantExempt
			default:
				st.typ = tyUnlimited
			}
		case u < 88:
			prefix, st.juris, st.typ = "SC", 1, tyLtd
		case u < 92:
			prefix, st.juris, st.typ = "NI", 2, tyLtd
		default:
			prefix, st.juris, st.typ = "OC", 0, tyLLP
		}
		digits %= pow10(width)
		copy(st.number[:], prefix)
		for k := 7; k >= len(prefix); k-- {
			st.number[k] = byte('0' + digits%10)
			digits /= 10
		}
		s.byNum[st.num()] = uint32(i)

		r := rng{s: h ^ 0x5bd1e995}
		v := version{orig: uint32(s.start0 - int64(30+r.intn(3000))*86400)}
		switch x := r.float(); {
		case x < p:
			v.status = stStrikeOff
		case x < p*1.4:
			v.status = stDissolved
		case x < p*1.4+0.02:
			v.status = stLiquidation
		case x < p*1.4+0.025:
			v.status = stAdministration
		}
		s.cos[i].cur = v
	}
	// Stationary balance: entries (active share * enterProb) equal exits (strike-off
	// share, each status event on a strike-off company exits), dissolutions come back
	// as restorations.
	s.enterProb = p / (1 - 1.4*p - 0.025 - 0.005)
}

func pow10(n int) uint64 {
	x := uint64(1)
	for range n {
		x *= 10
	}
	return x
}

// pubFor is published_at of event i (unix seconds), never before the previous one.
func (s *Sim) pubFor(i int64) uint32 {
	var p int64
	b := int64(s.cfg.Backlog)
	switch {
	case i < b:
		p = s.start0 - int64(float64(b-i)*s.spacingNs/1e9) - 1
	case s.cfg.Rate > 0:
		p = s.start0 + int64(float64(i-b+1)/s.cfg.Rate)
	default:
		p = s.cfg.Now().Unix()
	}
	if uint32(p) < s.lastPub {
		return s.lastPub
	}
	return uint32(p)
}

// generateLocked publishes events until the log holds target events (capped by Events).
func (s *Sim) generateLocked(target int64) {
	if s.cfg.Events > 0 && target > int64(s.cfg.Events) {
		target = int64(s.cfg.Events)
	}
	if target <= s.n {
		return
	}
	for s.n < target {
		s.recs = append(s.recs, s.genOne(s.n))
		s.n++
	}
	if r := s.cfg.Retention; r > 0 {
		slack := max(r/4, 4096)
		if len(s.recs) > r+slack {
			drop := len(s.recs) - r
			s.recs = append(make([]rec, 0, r+slack), s.recs[drop:]...)
			s.recBase += int64(drop)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// genOne generates event i from (Seed, i) and the state so far, applies it and
// returns its record.
func (s *Sim) genOne(i int64) rec {
	r := rng{s: h3(s.seed, tagEvent, uint64(i))}
	ci := uint32(r.intn(len(s.cos)))
	c := &s.cos[ci]
	pub := s.pubFor(i)
	tp := s.cfg.FirstTimepoint + i
	u := r.float()
	fc := r.float() < 0.05

	switch {
	case c.deleted:
		return s.change(r, ci, kUndelete, pub, tp, fc)
	case u < 0.005 && c.seen:
		s.lastPub = pub
		if c.cur.status == stStrikeOff {
			s.transitions = append(s.transitions, Transition{tp, s.statics[ci].num(), false})
		}
		c.deleted = true
		return rec{company: ci, v: c.cur, pub: pub, kind: kDeleted}
	case u < 0.025 && c.seen && c.hasPrev:
		// A late copy of the previous version, published before the current one.
		sp := c.srcPub - 1 - uint32(r.intn(3600))
		return rec{company: ci, v: c.prev, pub: sp, kind: kStale}
	case u < 0.125:
		s.lastPub = pub
		if !c.seen {
			c.seen, c.srcPub = true, pub
			if c.cur.status == stStrikeOff {
				s.transitions = append(s.transitions, Transition{tp, s.statics[ci].num(), true})
			}
		}
		return rec{company: ci, v: c.cur, pub: pub, kind: kDup}
	case u < 0.325:
		switch c.cur.status {
		case stActive:
			if r.float() < s.enterProb {
				return s.change(r, ci, kEnter, pub, tp, fc)
			}
		case stStrikeOff:
			if r.float() < 0.6 {
				return s.change(r, ci, kExitActive, pub, tp, fc)
			}
			return s.change(r, ci, kDissolve, pub, tp, fc)
		case stDissolved:
			return s.change(r, ci, kRestore, pub, tp, fc)
		}
	}
	var k uint8
	switch x := r.intn(100); {
	case x < 30:
		k = kAddr
	case x < 60:
		k = kAcct
	case x < 75:
		k = kSIC
	case x < 85:
		k = kRename
	default:
		k = kConf
	}
	return s.change(r, ci, k, pub, tp, fc)
}

// change makes a new version of company ci, applies it to truth and returns its record.
func (s *Sim) change(r rng, ci uint32, k uint8, pub uint32, tp int64, fc bool) rec {
	c := &s.cos[ci]
	wasIn := c.seen && !c.deleted && c.cur.status == stStrikeOff
	v := c.cur
	v.rev++
	v.orig = pub
	switch k {
	case kAddr, kUndelete:
		v.addr++
	case kAcct:
		v.acct++
	case kSIC:
		v.sic++
	case kRename:
		v.name++
	case kConf:
		v.conf++
	case kEnter:
		v.status = stStrikeOff
	case kExitActive, kRestore:
		v.status = stActive
	case kDissolve:
		v.status = stDissolved
	}
	c.prev, c.hasPrev, c.cur = c.cur, true, v
	if k == kEnter {
		c.enteredPub, c.entries = pub, c.entries+1
	}
	c.seen, c.deleted, c.srcPub = true, false, pub
	s.lastPub = pub
	if nowIn := v.status == stStrikeOff; nowIn != wasIn {
		s.transitions = append(s.transitions, Transition{tp, s.statics[ci].num(), nowIn})
	}
	if fc {
		k |= kFieldsChanged
	}
	return rec{company: ci, v: v, pub: pub, kind: k}
}

// Word lists for names, addresses and officers.
var (
	nameWords1 = []string{"ACME", "NORTHERN", "BLUE", "OAK", "RIVERSIDE", "KESTREL", "ALBION", "HIGHLAND", "PENNINE", "SILVER", "GREENFIELD", "MERIDIAN", "THAMES", "CLYDE", "BRIGHT", "CASTLE", "HARBOUR", "ORCHARD", "PHOENIX", "SUMMIT", "VALLEY", "WESSEX", "ASHFORD", "BECK", "CORNER", "DOVE", "ELM", "FOX", "GRANITE", "HAZEL", "IRIS", "JUNIPER"}
	nameWords2 = []string{"WIDGETS", "CONSULTING", "HOLDINGS", "PROPERTIES", "TRADING", "SERVICES", "DIGITAL", "LOGISTICS", "CATERING", "BUILDERS", "DESIGN", "MEDIA", "ENGINEERING", "VENTURES", "CARE", "ESTATES", "FOODS", "MOTORS", "SOLUTIONS", "TECHNOLOGIES", "INVESTMENTS", "CONSTRUCTION", "RETAIL", "ENERGY"}
	surnames   = []string{"SMITH", "JONES", "WILLIAMS", "TAYLOR", "BROWN", "DAVIES", "EVANS", "WILSON", "THOMAS", "JOHNSON", "ROBERTS", "ROBINSON", "THOMPSON", "WRIGHT", "WALKER", "WHITE", "EDWARDS", "HUGHES", "GREEN", "HALL", "O'BRIEN", "MACDONALD", "PATEL", "KHAN", "MURPHY", "CAMPBELL", "STEWART", "KELLY"}
	forenames  = []string{"James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "Sarah", "Thomas", "Emma", "Oliver", "Amelia", "Priya", "Mohammed", "Siobhan", "Angus", "Fiona", "Gareth", "Rhiannon"}
	streets    = []string{"High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Park Avenue", "King Street", "Queen Street", "New Road", "Market Place", "Bridge Street", "London Road"}
	line2s     = []string{"Unit 4", "Suite 12", "First Floor", "Business Park", "The Old Mill", "Office 3"}
	towns      = [][]struct{ town, region, pc string }{
		{{"London", "", "EC1A"}, {"Manchester", "Greater Manchester", "M1"}, {"Leeds", "West Yorkshire", "LS1"}, {"Bristol", "", "BS1"}, {"Birmingham", "West Midlands", "B1"}, {"Norwich", "Norfolk", "NR1"}},
		{{"Edinburgh", "", "EH1"}, {"Glasgow", "", "G1"}, {"Aberdeen", "Aberdeenshire", "AB10"}, {"Dundee", "", "DD1"}},
		{{"Belfast", "County Antrim", "BT1"}, {"Derry", "County Londonderry", "BT48"}, {"Newry", "County Down", "BT34"}},
		{{"Cardiff", "", "CF10"}, {"Swansea", "", "SA1"}, {"Newport", "Gwent", "NP20"}},
	}
	countries = []string{"England", "Scotland", "Northern Ireland", "Wales"}
	sicCodes  = []string{"56290", "70229", "62020", "68209", "41100", "47910", "82990", "43999", "96090", "74909", "86900", "49410", "62090", "68100", "56101"}
)

// companyName is the name for rename counter k.
func (s *Sim) companyName(ci uint32, k uint16) string {
	st := &s.statics[ci]
	r := rng{s: h4(s.seed, tagName, uint64(ci), uint64(k))}
	w1, w2 := pick(&r, nameWords1), pick(&r, nameWords2)
	var name string
	switch r.intn(10) {
	case 0:
		name = pick(&r, surnames) + " & SONS"
	case 1:
		name = w1 + " " + w2 + " (UK)"
	case 2:
		name = w1 + " & " + pick(&r, nameWords1) + " " + w2
	default:
		name = w1 + " " + w2
	}
	switch st.typ {
	case tyPlc:
		return name + " PLC"
	case tyLLP:
		return name + " LLP"
	case tyUnlimited:
		return name
	case tyGuarant, tyGuarantExempt:
		return name + " FOUNDATION LIMITED"
	}
	if r.intn(2) == 0 {
		return name + " LTD"
	}
	return name + " LIMITED"
}

// etag is 40 hex characters, a function of the company and its version.
func (s *Sim) etag(ci uint32, rev uint32) string {
	var b [40]byte
	const hexd = "0123456789abcdef"
	h0 := h4(s.seed, tagEtag, uint64(ci), uint64(rev))
	var h uint64
	for i := range b {
		if i%16 == 0 {
			h = mix(h0 + uint64(i))
		}
		b[i] = hexd[h&15]
		h >>= 4
	}
	return string(b[:])
}

func day(unix int64) time.Time { return time.Unix(unix, 0).UTC() }
