package rollback_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/rollback"
)

// notionAPI is a fake Notion client: it keeps pages in memory.
type notionAPI struct {
	pages map[string]string
	next  int
}

func newNotion() *notionAPI { return &notionAPI{pages: map[string]string{}} }

func (n *notionAPI) CreatePage(_ context.Context, title string) (string, error) {
	n.next++
	id := fmt.Sprintf("page-%d", n.next)
	n.pages[id] = title
	fmt.Println("notion: created", id)
	return id, nil
}

// DeletePage is idempotent: deleting a page that is already gone succeeds,
// so the compensation can be retried safely.
func (n *notionAPI) DeletePage(_ context.Context, id string) error {
	delete(n.pages, id)
	fmt.Println("notion: deleted", id)
	return nil
}

// trelloAPI is a fake Trello client that is down when down is set.
type trelloAPI struct{ down bool }

var errTrelloDown = errors.New("trello: 503 Service Unavailable")

func (t *trelloAPI) CreateCard(_ context.Context, title, link string) (string, error) {
	if t.down {
		fmt.Println("trello: create card failed")
		return "", errTrelloDown
	}
	fmt.Println("trello: created card for", link)
	return "card-1", nil
}

// Publishing a plan creates a Notion page, then a Trello card linking to
// it. When the card cannot be created, the page is deleted again, so no
// orphan page is left behind.
func Example_notionPageTrelloCard() {
	notion, trello := newNotion(), &trelloAPI{down: true}

	publish := func(ctx context.Context) (string, error) {
		pageID, err := notion.CreatePage(ctx, "Launch plan")
		if err != nil {
			return "", err
		}
		// The page exists: say how to undo it, right away.
		_ = rollback.OnRollback(ctx, "delete notion page", func(ctx context.Context) error {
			return notion.DeletePage(ctx, pageID)
		})
		return trello.CreateCard(ctx, "Launch plan", "https://notion.so/"+pageID)
	}

	logEvent := func(ev bulwark.Event) { fmt.Println("event:", ev.Kind, ev.Step) }
	_, err := rollback.Do(context.Background(), publish,
		rollback.WithConfig(rollback.Config{OnEvent: logEvent}))

	fmt.Println("error:", err)
	fmt.Println("trello down:", errors.Is(err, errTrelloDown))
	fmt.Println("pages left:", len(notion.pages))
	// Output:
	// notion: created page-1
	// trello: create card failed
	// notion: deleted page-1
	// event: rollback:compensated delete notion page
	// error: trello: 503 Service Unavailable
	// trello down: true
	// pages left: 0
}

// publication is the state of the publishing saga: the input (Title) and
// what each step created.
type publication struct {
	Title  string
	PageID string
	CardID string
}

// The same scenario as a saga: the state is a struct the steps fill in, so
// the card step reads the page's ID and the page's Undo deletes exactly the
// page its Do created.
func ExampleSaga() {
	notion, trello := newNotion(), &trelloAPI{down: true}

	saga, err := rollback.NewSaga([]rollback.Step[publication]{
		{
			Name: "notion page",
			Do: func(ctx context.Context, p *publication) (err error) {
				p.PageID, err = notion.CreatePage(ctx, p.Title)
				return err
			},
			Undo: func(ctx context.Context, p *publication) error {
				return notion.DeletePage(ctx, p.PageID)
			},
		},
		{
			Name: "trello card",
			Do: func(ctx context.Context, p *publication) (err error) {
				p.CardID, err = trello.CreateCard(ctx, p.Title, "https://notion.so/"+p.PageID)
				return err
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	err = saga.Run(context.Background(), &publication{Title: "Launch plan"})
	fmt.Println("error:", err)

	var failed *rollback.StepError
	if errors.As(err, &failed) {
		fmt.Println("failed step:", failed.Step)
	}
	// Output:
	// notion: created page-1
	// trello: create card failed
	// notion: deleted page-1
	// error: rollback: step "trello card": trello: 503 Service Unavailable
	// failed step: trello card
}

// A compensation that still fails after its attempts is reported by name,
// and the call's own error stays in the chain.
func ExampleError() {
	_, err := rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		_ = rollback.OnRollback(ctx, "refund charge", func(context.Context) error {
			// Permanent: retrying cannot help, so it is not retried.
			return rollback.Permanent(errors.New("payments: charge already settled"))
		})
		return 0, errTrelloDown
	})

	var rbErr *rollback.Error
	if errors.As(err, &rbErr) {
		for _, f := range rbErr.Failures {
			fmt.Printf("%s: %v\n", f.Step, f.Err)
		}
	}
	fmt.Println(errors.Is(err, errTrelloDown))
	// Output:
	// refund charge: payments: charge already settled
	// true
}

// In a stack, rollback is the innermost middleware: every attempt of the
// retried call is its own scope, undone before the next attempt.
func ExampleMiddleware() {
	attempt := 0
	work := func(ctx context.Context) (string, error) {
		attempt++
		n := attempt
		fmt.Println("attempt", n, "reserves a seat")
		_ = rollback.OnRollback(ctx, "release seat", func(context.Context) error {
			fmt.Println("attempt", n, "releases its seat")
			return nil
		})
		if n < 2 {
			return "", errors.New("payment declined")
		}
		return "booked", nil
	}
	// A minimal retry layer, for the example.
	retryOnce := func(next bulwark.Func[string]) bulwark.Func[string] {
		return func(ctx context.Context) (string, error) {
			if v, err := next(ctx); err == nil {
				return v, nil
			}
			return next(ctx)
		}
	}

	call := bulwark.Chain(retryOnce, rollback.Middleware[string]())(work)
	fmt.Println(call(context.Background()))
	// Output:
	// attempt 1 reserves a seat
	// attempt 1 releases its seat
	// attempt 2 reserves a seat
	// booked <nil>
}

// OnRollback outside any scope registers nothing and says so, so the same
// code runs with or without the rollback layer.
func ExampleOnRollback() {
	undo := func(context.Context) error { return nil }

	err := rollback.OnRollback(context.Background(), "undo", undo)
	fmt.Println(err, errors.Is(err, rollback.ErrNoScope))

	_, _ = rollback.Do(context.Background(), func(ctx context.Context) (int, error) {
		fmt.Println(rollback.OnRollback(ctx, "undo", undo))
		return 0, nil
	})
	// Output:
	// rollback: no scope in context true
	// <nil>
}

// Begin is the two-step form, for code that cannot pass its work as a
// function. The deferred Rollback covers panics and early returns; after
// Commit it does nothing.
func ExampleBegin() {
	save := func(ctx context.Context, fail bool) (err error) {
		ctx, sc, err := rollback.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = sc.Rollback(nil) }()

		fmt.Println("row inserted")
		_ = rollback.OnRollback(ctx, "delete row", func(context.Context) error {
			fmt.Println("row deleted")
			return nil
		})
		if fail {
			return sc.Rollback(errors.New("index update failed"))
		}
		return sc.Commit()
	}

	fmt.Println(save(context.Background(), false))
	fmt.Println(save(context.Background(), true))
	// Output:
	// row inserted
	// <nil>
	// row inserted
	// row deleted
	// index update failed
}
