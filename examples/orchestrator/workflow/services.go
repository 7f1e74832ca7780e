package workflow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

// services holds in-memory fakes of the three services the agent's tools
// call. They outlive every run, as remote services outlive the processes
// that call them. Every request is logged to w, so the output shows what
// reached the services (and, for a replayed step, that nothing did).
//
// Like Stripe's API, a service remembers the answer to each request that
// carried an Idempotency-Key and succeeded, and answers a later request
// with the same key with that first answer, without acting again, even if
// what it created has been deleted since. Failed requests are not
// remembered (a simplification: Stripe also keeps 4xx answers), so a
// request that failed may be sent again under its key.
type services struct {
	w io.Writer

	mu       sync.Mutex
	requests int               // requests that reached a service
	keyHits  int               // requests answered with a key's first answer
	answers  map[string]string // "service key" → the first answer
	next     map[string]int    // kind → the number of its last ID
	uploads  []string          // notion file uploads
	pages    map[string]string // notion pages → the upload each holds
	cards    []string          // trello cards
	messages []string          // slack messages in #sprint-7
	fail     int               // notion: answer the next n page creations with a 503
	archived bool              // slack: #sprint-7 is archived
}

var (
	errUnavailable = errors.New("503 Service Unavailable")
	errArchived    = errors.New("is_archived")
)

func newServices(w io.Writer) *services {
	return &services{w: w, answers: map[string]string{}, next: map[string]int{}, pages: map[string]string{}}
}

// failPageCreations makes notion answer the next n page creations with a
// 503.
func (s *services) failPageCreations(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = n
}

// archiveChannel archives or unarchives slack's #sprint-7.
func (s *services) archiveChannel(archived bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archived = archived
}

// counts returns how many requests reached the services, and how many of
// them were answered with a key's first answer.
func (s *services) counts() (requests, keyHits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.keyHits
}

// id returns a new ID of the given kind ("page-2"). Called with mu held.
func (s *services) id(kind string) string {
	s.next[kind]++
	return fmt.Sprintf("%s-%d", kind, s.next[kind])
}

// log logs one request to service and counts it. Called with mu held.
func (s *services) log(service, format string, args ...any) {
	s.requests++
	fmt.Fprintf(s.w, "      %-6s %s\n", service, fmt.Sprintf(format, args...))
}

// keyed runs a request to service that carries key: it answers with the
// key's first answer if the service has one, and otherwise runs act,
// remembering its answer if it succeeded. req describes the request.
// Called with mu held.
func (s *services) keyed(service, key, req string, act func() (string, error)) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%s: no Idempotency-Key", service)
	}
	if v, ok := s.answers[service+" "+key]; ok {
		s.keyHits++
		s.log(service, "%s key %s → %s (key seen: its first answer again)", req, shortKey(key), v)
		return v, nil
	}
	v, err := act()
	if err != nil {
		s.log(service, "%s key %s → %v", req, shortKey(key), err)
		return "", fmt.Errorf("%s: %w", service, err)
	}
	s.answers[service+" "+key] = v
	s.log(service, "%s key %s → %s", req, shortKey(key), v)
	return v, nil
}

// remove deletes id from list, and reports whether it was there.
func remove(list *[]string, id string) bool {
	n := len(*list)
	*list = slices.DeleteFunc(*list, func(x string) bool { return x == id })
	return len(*list) < n
}

// notFound is a delete of something that does not exist: nothing to undo.
func notFound(id string) error {
	return fmt.Errorf("%s: 404 Not Found: %w", id, rollback.ErrNoEffect)
}

// upload uploads a file to notion (no idempotency key: each call is a new
// upload).
func (s *services) upload(_ context.Context, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id("file")
	s.uploads = append(s.uploads, id)
	s.log("notion", "POST /v1/file_uploads %s → %s", name, id)
	return id
}

func (s *services) deleteUpload(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !remove(&s.uploads, id) {
		return notFound(id)
	}
	s.log("notion", "DELETE /v1/file_uploads/%s → 200 OK", id)
	return nil
}

// createPage creates a notion page holding the upload file.
func (s *services) createPage(_ context.Context, key, title, file string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyed("notion", key, fmt.Sprintf("POST /v1/pages %q", title), func() (string, error) {
		if s.fail > 0 {
			s.fail--
			return "", errUnavailable
		}
		id := s.id("page")
		s.pages[id] = file
		return id, nil
	})
}

// deletePage deletes a notion page and the upload it holds.
func (s *services) deletePage(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	file, ok := s.pages[id]
	if !ok {
		return notFound(id)
	}
	delete(s.pages, id)
	remove(&s.uploads, file)
	s.log("notion", "DELETE /v1/pages/%s → 200 OK (and its upload %s)", id, file)
	return nil
}

func (s *services) createCard(_ context.Context, key, title string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyed("trello", key, fmt.Sprintf("POST /1/cards %q", title), func() (string, error) {
		id := s.id("card")
		s.cards = append(s.cards, id)
		return id, nil
	})
}

func (s *services) deleteCard(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !remove(&s.cards, id) {
		return notFound(id)
	}
	s.log("trello", "DELETE /1/cards/%s → 200 OK", id)
	return nil
}

// postMessage posts text to #sprint-7. An archived channel is the
// service's final answer: asking again cannot unarchive it.
func (s *services) postMessage(_ context.Context, key, text string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.keyed("slack", key, fmt.Sprintf("POST chat.postMessage %q", text), func() (string, error) {
		if s.archived {
			return "", errArchived
		}
		id := s.id("msg")
		s.messages = append(s.messages, id)
		return id, nil
	})
	if errors.Is(err, errArchived) {
		return "", bulwark.Final(err)
	}
	return v, err
}

func (s *services) deleteMessage(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !remove(&s.messages, id) {
		return notFound(id)
	}
	s.log("slack", "POST chat.delete %s → ok", id)
	return nil
}

// holdings returns what the services hold: pages, uploads, cards,
// messages.
func (s *services) holdings() (pages, uploads, cards, messages []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.pages {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	return pages, slices.Clone(s.uploads), slices.Clone(s.cards), slices.Clone(s.messages)
}

// String describes what the services hold.
func (s *services) String() string {
	pages, uploads, cards, messages := s.holdings()
	if len(pages)+len(uploads)+len(cards)+len(messages) == 0 {
		return "nothing"
	}
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "none"
		}
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("pages: %s; uploads: %s; cards: %s; messages: %s",
		list(pages), list(uploads), list(cards), list(messages))
}

// shortKey shortens an idempotency key for the output: its first four and
// last two hex digits, then its generation suffix, if any ("4a80…f3.1").
func shortKey(key string) string {
	base, gen, found := strings.Cut(key, ".")
	if len(base) > 8 {
		base = base[:4] + "…" + base[len(base)-2:]
	}
	if found {
		return base + "." + gen
	}
	return base
}
