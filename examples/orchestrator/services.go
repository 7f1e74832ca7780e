package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// workspace holds in-memory fakes of the three services the agent's tools
// call. Every request is logged to w, so the output shows what reached the
// services (and, for replayed steps, that nothing did).
type workspace struct {
	w io.Writer

	mu          sync.Mutex
	requests    int
	pages       []string // notion page IDs
	nextPage    int
	failAppends int // notion: fail the next n block appends with a 503
	cards       []string
	nextCard    int
	channels    []string // slack channels that exist
	messages    []string
	nextMessage int
}

var (
	errUnavailable     = errors.New("503 Service Unavailable")
	errChannelNotFound = errors.New("slack: channel_not_found")
)

func newWorkspace(w io.Writer) *workspace {
	return &workspace{w: w}
}

// failNextAppends makes notion fail the next n block appends with a 503.
func (ws *workspace) failNextAppends(n int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.failAppends = n
}

// requestCount returns how many requests reached the services.
func (ws *workspace) requestCount() int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.requests
}

// request logs one request to service and counts it. Called with mu held.
func (ws *workspace) request(service, format string, args ...any) {
	ws.requests++
	fmt.Fprintf(ws.w, "      %-6s %s\n", service, fmt.Sprintf(format, args...))
}

func (ws *workspace) createPage(_ context.Context, title string) string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.nextPage++
	id := fmt.Sprintf("page-%d", ws.nextPage)
	ws.pages = append(ws.pages, id)
	ws.request("notion", "POST /v1/pages %q → %s", title, id)
	return id
}

func (ws *workspace) appendBlocks(_ context.Context, page string, blocks int) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.failAppends > 0 {
		ws.failAppends--
		ws.request("notion", "PATCH /v1/blocks/%s/children (%d blocks) → %v", page, blocks, errUnavailable)
		return fmt.Errorf("notion: %w", errUnavailable)
	}
	ws.request("notion", "PATCH /v1/blocks/%s/children (%d blocks) → 200 OK", page, blocks)
	return nil
}

func (ws *workspace) deletePage(_ context.Context, page string) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.pages = slices.DeleteFunc(ws.pages, func(p string) bool { return p == page })
	ws.request("notion", "DELETE /v1/pages/%s → 200 OK", page)
	return nil
}

func (ws *workspace) createCard(_ context.Context, title string) string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.nextCard++
	id := fmt.Sprintf("card-%d", ws.nextCard)
	ws.cards = append(ws.cards, id)
	ws.request("trello", "POST /1/cards %q → %s", title, id)
	return id
}

func (ws *workspace) deleteCard(_ context.Context, card string) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.cards = slices.DeleteFunc(ws.cards, func(c string) bool { return c == card })
	ws.request("trello", "DELETE /1/cards/%s → 200 OK", card)
	return nil
}

func (ws *workspace) createChannel(name string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.channels = append(ws.channels, name)
}

func (ws *workspace) postMessage(_ context.Context, channel, text string) (string, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !slices.Contains(ws.channels, channel) {
		ws.request("slack", "POST chat.postMessage %s → channel_not_found", channel)
		return "", errChannelNotFound
	}
	ws.nextMessage++
	ts := fmt.Sprintf("msg-%d", ws.nextMessage)
	ws.messages = append(ws.messages, ts)
	ws.request("slack", "POST chat.postMessage %s %q → %s", channel, text, ts)
	return ts, nil
}

func (ws *workspace) deleteMessage(_ context.Context, ts string) error {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.messages = slices.DeleteFunc(ws.messages, func(m string) bool { return m == ts })
	ws.request("slack", "POST chat.delete %s → ok", ts)
	return nil
}

// String describes what the services hold.
func (ws *workspace) String() string {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	list := func(ids []string) string {
		if len(ids) == 0 {
			return "none"
		}
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("notion pages: %s; trello cards: %s; slack messages: %s; requests so far: %d",
		list(ws.pages), list(ws.cards), list(ws.messages), ws.requests)
}
