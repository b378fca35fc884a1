package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves GET /companies (the stream), GET /company/{n},
// GET /company/{n}/officers, GET /company/{n}/persons-with-significant-control
// and GET /company/{n}/filing-history.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /companies", s.serveStream)
	mux.HandleFunc("GET /company/{n}", s.rest(s.serveProfile))
	mux.HandleFunc("GET /company/{n}/officers", s.rest(s.serveOfficers))
	mux.HandleFunc("GET /company/{n}/filing-history", s.rest(s.serveFilingHistory))
	mux.HandleFunc("GET /company/{n}/persons-with-significant-control", s.rest(s.servePSCs))
	return mux
}

const notFound = `{"errors":[{"error":"company-profile-not-found","type":"ch:service"}]}`

// rateWindow is one key's fixed budget window.
type rateWindow struct {
	end   time.Time
	count int
}

// statusWriter remembers the status an endpoint answered, for RESTStats.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// rest wraps a REST endpoint with the faults, auth and the budget. The budget
// belongs to the key (the Basic-auth user name): every client using a key
// spends the same window, and another key has its own. A window is anchored
// at its first request in whole seconds, so Reset is that request's Date plus
// the window, as samples of Companies House show. Every answer past the
// gateway carries the X-Ratelimit-* headers; a 401 spends no budget.
func (s *Sim) rest(h http.HandlerFunc) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		defer func() { s.countStatus(w.code, r.Pattern) }()
		n := s.restN.Add(1)
		now := s.cfg.Now()
		f := &s.cfg.API
		hd := w.Header()
		hd.Set("Date", now.UTC().Format(http.TimeFormat))
		switch {
		case s.inOutage(now) || (f.Status5xxEvery > 0 && n >= int64(f.Status5xxEvery) && n%int64(f.Status5xxEvery) < int64(f.Status5xxBurst)):
			g := gatewayErrors[(s.restGW.Add(1)-1)%int64(len(gatewayErrors))]
			writeGateway(w, g.code, g.text)
			return
		case every(f.Status403Every, n):
			writeGateway(w, http.StatusForbidden, "403 Forbidden")
			return
		}
		user, _, _ := r.BasicAuth()
		ok := authorized(r, s.cfg.APIKey)
		s.rlMu.Lock()
		win := s.rl[user]
		if win == nil || !now.Before(win.end) {
			win = &rateWindow{end: now.Truncate(time.Second).Add(s.cfg.APIRateWindow)}
			s.rl[user] = win
		}
		if ok {
			win.count++
		}
		count, end := win.count, win.end
		s.rlMu.Unlock()
		limit := s.cfg.APIRateLimit
		remain := "X-Ratelimit-Remain"
		if f.RemainingHeader {
			remain = "X-Ratelimit-Remaining"
		}
		hd.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
		hd.Set(remain, strconv.Itoa(max(limit-count, 0)))
		hd.Set("X-Ratelimit-Reset", strconv.FormatInt(end.Unix(), 10))
		hd.Set("X-Ratelimit-Window", windowText(s.cfg.APIRateWindow))
		switch {
		case !ok:
			writeJSONError(w, http.StatusUnauthorized, body401)
		case count > limit:
			writeJSONError(w, http.StatusTooManyRequests, `{"error":"Too Many Requests","type":"ch:service"}`)
		default:
			if every(f.SlowEvery, n) {
				t := time.NewTimer(f.SlowFor)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return // the client gave up
				}
			}
			h(w, r)
		}
	}
}

func writeGateway(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(code)
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n</body>\r\n</html>\r\n", text, text)
}

func (s *Sim) inOutage(now time.Time) bool {
	s.rlMu.Lock()
	defer s.rlMu.Unlock()
	return !now.Before(s.outage[0]) && now.Before(s.outage[1])
}

// Outage makes every REST request answer a gateway error (503, 502, 504 in
// turn) for d from now, by Config.Now. It replaces any outage set before.
func (s *Sim) Outage(d time.Duration) {
	now := s.cfg.Now()
	s.rlMu.Lock()
	s.outage = [2]time.Time{now, now.Add(d)}
	s.rlMu.Unlock()
}

func (s *Sim) countStatus(code int, pattern string) {
	if code == 0 {
		return // the client went away before an answer
	}
	s.rlMu.Lock()
	s.byStatus[code]++
	s.byEndpoint[strings.TrimPrefix(pattern, "GET ")]++
	s.rlMu.Unlock()
}

// RESTStats counts what the REST API answered.
type RESTStats struct {
	Requests int64         // REST requests received
	ByStatus map[int]int64 // answers by HTTP status
	// ByEndpoint counts the answers by route: "/company/{n}",
	// "/company/{n}/officers", "/company/{n}/persons-with-significant-control".
	ByEndpoint map[string]int64
}

// RESTStats returns the REST answers so far.
func (s *Sim) RESTStats() RESTStats {
	s.rlMu.Lock()
	defer s.rlMu.Unlock()
	st := RESTStats{Requests: s.restN.Load(), ByStatus: make(map[int]int64, len(s.byStatus))}
	for k, v := range s.byStatus {
		st.ByStatus[k] = v
	}
	st.ByEndpoint = make(map[string]int64, len(s.byEndpoint))
	for k, v := range s.byEndpoint {
		st.ByEndpoint[k] = v
	}
	return st
}

func windowText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// lookup finds a live (not deleted) company and its current version.
func (s *Sim) lookup(n string) (uint32, version, bool) {
	ci, ok := s.byNum[n]
	if !ok {
		return 0, version{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	c := &s.cos[ci]
	return ci, c.cur, !c.deleted
}

func (s *Sim) serveProfile(w http.ResponseWriter, r *http.Request) {
	ci, v, ok := s.lookup(r.PathValue("n"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, notFound)
		return
	}
	b := s.appendData(make([]byte, 0, 2048), ci, v, 0)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// Officer list JSON, as GET /company/{n}/officers answers it.
type officerList struct {
	ActiveCount   int    `json:"active_count"`
	ResignedCount int    `json:"resigned_count"`
	InactiveCount int    `json:"inactive_count"`
	TotalResults  *int   `json:"total_results,omitempty"` // older answers sometimes lacked it
	ItemsPerPage  int    `json:"items_per_page"`
	StartIndex    int    `json:"start_index"`
	Kind          string `json:"kind"`
	Etag          string `json:"etag"`
	Links         struct {
		Self string `json:"self"`
	} `json:"links"`
	Items []officer `json:"items"`
}

type officer struct {
	Name               string       `json:"name"`
	OfficerRole        string       `json:"officer_role"`
	AppointedOn        string       `json:"appointed_on"`
	ResignedOn         string       `json:"resigned_on,omitempty"`
	Nationality        string       `json:"nationality,omitempty"`
	Occupation         string       `json:"occupation,omitempty"`
	CountryOfResidence string       `json:"country_of_residence,omitempty"`
	DateOfBirth        *birth       `json:"date_of_birth,omitempty"`
	Address            officerAddr  `json:"address"`
	Links              officerLinks `json:"links"`
}

type birth struct {
	Month int `json:"month"`
	Year  int `json:"year"`
}

type officerAddr struct {
	Premises     string `json:"premises,omitempty"`
	AddressLine1 string `json:"address_line_1"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	Locality     string `json:"locality"`
	Region       string `json:"region,omitempty"`
	PostalCode   string `json:"postal_code"`
	Country      string `json:"country"`
}

type officerLinks struct {
	Self    string `json:"self"`
	Officer struct {
		Appointments string `json:"appointments"`
	} `json:"officer"`
}

// officerCount is how many officer items company ci has: none for about 3%,
// 101-250 for about 1%, else 1-40 (mostly few).
func (s *Sim) officerCount(ci uint32) int {
	r := rng{s: h3(s.seed, tagOfficers, uint64(ci))}
	switch u := r.intn(100); {
	case u < 3:
		return 0
	case u < 4:
		return 101 + r.intn(150)
	case u < 70:
		return 1 + r.intn(4)
	default:
		return 1 + r.intn(40)
	}
}

// listShape is how company ci's officer list answers, from its hash: a third
// of the companies without officers answer 404 (as the list did before 2023),
// the others an empty 200; about 5% of lists omit total_results.
func (s *Sim) listShape(ci uint32) (notFoundWhenEmpty, noTotal bool) {
	r := rng{s: h4(s.seed, tagOfficers, uint64(ci), 7)}
	return r.intn(3) == 0, r.intn(20) == 0
}

// officers builds company ci's full officer list. When it has at least two items and
// its hash says so (about two thirds), items 0 and 1 are one person holding two roles:
// director and secretary, the same officer id, two appointment ids.
func (s *Sim) officers(ci uint32) []officer {
	n := s.officerCount(ci)
	if n == 0 {
		return nil
	}
	st := &s.statics[ci]
	num := st.num()
	base := rng{s: h4(s.seed, tagOfficers, uint64(ci), 1)}
	twoRoles := n >= 2 && st.typ != tyLLP && base.intn(3) != 0
	items := make([]officer, 0, n)
	var resigned []officer
	for j := range n {
		person := j
		if twoRoles && j == 1 {
			person = 0
		}
		pr := rng{s: h4(s.seed, tagOfficers, uint64(ci), uint64(1000+person))}
		ar := rng{s: h4(s.seed, tagOfficers, uint64(ci), uint64(100000+j))}
		o := officer{
			Name:        pick(&pr, surnames) + ", " + pick(&pr, forenames) + " " + pick(&pr, forenames),
			Nationality: pick(&pr, []string{"British", "British", "Irish", "Indian", "Polish", "French"}),
		}
		occ := pick(&pr, []string{"Director", "Company Director", "Accountant", "Consultant", "Engineer", "Retired", "Chef"})
		dob := &birth{Month: 1 + pr.intn(12), Year: 1940 + pr.intn(65)}
		tw := pick(&pr, towns[st.juris])
		o.CountryOfResidence = pick(&pr, []string{"England", "United Kingdom", "Scotland", "Northern Ireland", "Wales"})
		o.Address = officerAddr{
			Premises:     strconv.Itoa(1 + pr.intn(120)),
			AddressLine1: pick(&pr, streets),
			Locality:     tw.town,
			Region:       tw.region,
			PostalCode:   tw.pc + " " + strconv.Itoa(1+pr.intn(9)) + string(rune('A'+pr.intn(26))) + string(rune('A'+pr.intn(26))),
			Country:      countries[st.juris],
		}
		switch {
		case st.typ == tyLLP && j < 2:
			o.OfficerRole = "llp-designated-member"
		case st.typ == tyLLP:
			o.OfficerRole = "llp-member"
		case twoRoles && j == 1, !twoRoles && j > 0 && ar.intn(8) == 0:
			o.OfficerRole = "secretary"
		default:
			o.OfficerRole = "director"
		}
		if o.OfficerRole == "secretary" {
			o.CountryOfResidence = "" // secretaries show neither occupation nor birth date
		} else {
			o.Occupation, o.DateOfBirth = occ, dob
		}
		appointed := time.Date(2000+ar.intn(24), time.Month(1+ar.intn(12)), 1+ar.intn(28), 0, 0, 0, 0, time.UTC)
		o.AppointedOn = appointed.Format(time.DateOnly)
		if j >= 2 && ar.intn(4) == 0 {
			o.ResignedOn = appointed.AddDate(1+ar.intn(5), ar.intn(12), 0).Format(time.DateOnly)
		}
		o.Links.Self = "/company/" + num + "/appointments/" + idString(h4(s.seed, tagOfficers, uint64(ci), uint64(200000+j)))
		o.Links.Officer.Appointments = "/officers/" + idString(h4(s.seed, tagOfficers, uint64(ci), uint64(300000+person))) + "/appointments"
		if o.ResignedOn != "" {
			resigned = append(resigned, o)
		} else {
			items = append(items, o)
		}
	}
	return append(items, resigned...)
}

// idString is a 27-character URL-safe id, like the real appointment and officer ids.
func idString(h uint64) string {
	var raw [20]byte
	for i := 0; i < 20; i += 8 {
		h = mix(h)
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], h)
		copy(raw[i:], w[:])
	}
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

func (s *Sim) serveOfficers(w http.ResponseWriter, r *http.Request) {
	num := r.PathValue("n")
	ci, v, ok := s.lookup(num)
	var all []officer
	var empty404, noTotal bool
	if ok {
		all = s.officers(ci)
		empty404, noTotal = s.listShape(ci)
	}
	if !ok || (len(all) == 0 && empty404) {
		writeJSONError(w, http.StatusNotFound, `{"errors":[{"error":"not-found","type":"ch:service"}]}`)
		return
	}
	q := r.URL.Query()
	per, start := 35, 0
	if v, err := strconv.Atoi(q.Get("items_per_page")); err == nil && v > 0 {
		per = min(v, s.cfg.API.PageCap)
	}
	if v, err := strconv.Atoi(q.Get("start_index")); err == nil && v > 0 {
		start = v
	}
	l := officerList{
		ItemsPerPage: per,
		StartIndex:   start,
		Kind:         "officer-list",
		Etag:         s.etag(ci, 0xffffffff),
		Items:        []officer{},
	}
	if !noTotal {
		total := len(all)
		l.TotalResults = &total
	}
	l.Links.Self = "/company/" + num + "/officers"
	dissolved := v.status == stDissolved
	for _, o := range all {
		switch {
		case o.ResignedOn != "":
			l.ResignedCount++
		case dissolved:
			// Former officers of a dissolved company: not active, yet
			// without resigned_on.
			l.InactiveCount++
		default:
			l.ActiveCount++
		}
	}
	if start < len(all) {
		l.Items = all[start:min(start+per, len(all))]
	}
	if s.cfg.API.OverlapPages && start > 0 && start <= len(all) {
		// The previous page's last item again, first.
		l.Items = append([]officer{all[start-1]}, l.Items...)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l)
}

// OfficerList is the simulator's truth about a company's officer list: what
// a client that reads every page must end up with.
type OfficerList struct {
	Found     bool           // false: the list answers 404 (an unknown or deleted company, or a company without officers answering the older way)
	NoTotal   bool           // the answers omit total_results, as older ones sometimes did
	Dissolved bool           // active_count is 0: officers without resigned_on are former officers, not serving ones
	Officers  []OfficerTruth // every item, in list order
}

// OfficerTruth is one item of an officer list.
type OfficerTruth struct {
	AppointmentID string // the last segment of links.self
	Name          string
	Role          string
	AppointedOn   string
	ResignedOn    string // "" when the item has none
}

// Officers returns the truth about company number's officer list now.
func (s *Sim) Officers(number string) OfficerList {
	ci, v, ok := s.lookup(number)
	if !ok {
		return OfficerList{}
	}
	all := s.officers(ci)
	empty404, noTotal := s.listShape(ci)
	l := OfficerList{Found: len(all) > 0 || !empty404, NoTotal: noTotal, Dissolved: v.status == stDissolved}
	for _, o := range all {
		l.Officers = append(l.Officers, OfficerTruth{
			AppointmentID: o.Links.Self[strings.LastIndexByte(o.Links.Self, '/')+1:],
			Name:          o.Name, Role: o.OfficerRole, AppointedOn: o.AppointedOn, ResignedOn: o.ResignedOn,
		})
	}
	return l
}

// CompanyNumbers lists every company of the simulated register, in register
// order, whether or not the stream has published it yet.
func (s *Sim) CompanyNumbers() []string {
	out := make([]string, len(s.statics))
	for i := range s.statics {
		out[i] = s.statics[i].num()
	}
	return out
}
