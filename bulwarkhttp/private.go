package bulwarkhttp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bulwark-go/bulwark/idempotency"
)

// What the fallback cache may keep, and for whom.
//
// An executor's fallback cache is shared by every request the Transport
// sends to that executor, whoever the request acts for: it is a shared
// cache in the sense of RFC 9111 §1, and follows the rules RFC 9111 sets
// for what a shared cache may store and whom it may give a stored
// response to. A 200 to a GET is kept only when all of these hold:
//
//   - the request does not say Cache-Control: no-store (§5.2.1.5), and
//     the response does not say no-store (§5.2.2.5);
//   - the response does not say private (§5.2.2.7), with or without
//     field names: the whole response is then meant for one user;
//   - the request carries no credentials (Authorization, or Cookie), or
//     the response says public (§3.5, §5.2.2.9). §3.5 also lets a shared
//     cache reuse such a response for other requests when it says
//     must-revalidate or s-maxage, but only because the cache must then revalidate it with
//     the origin, under the new request's credentials, before reusing it
//     once stale (§5.2.2.2; §5.2.2.10, which includes §5.2.2.8); the fallback serves a copy exactly
//     when the origin cannot be asked, so those two do not count. Cookie
//     is treated as Authorization: it identifies a session as much as a
//     token does, and servers that personalise by cookie rarely say Vary:
//     Cookie;
//   - the response has no Set-Cookie: it hands one client a cookie (a
//     session, a CSRF token), and replaying it to another, or later,
//     gives away or rolls back that state (RFC 9111 §7.3);
//   - the response's Vary (§4.1) lists only headers the key tells apart
//     (below); Vary: * never matches another request, so such a response
//     is not kept.
//
// The key of a copy (§4.1): "GET " and the URL; then, for each of the
// content-negotiation headers Accept, Accept-Charset, Accept-Encoding,
// Accept-Language, Origin and User-Agent present on the request, its
// name and values; then a mark for a request with credentials, so that
// such requests (whose copies, if any, said public) and requests without
// them never get each other's copies. A copy is therefore found only by
// a request with the same values of all these headers: whichever of them
// the response varies on, the copy is served only to a request that
// matches it, as §4.1 requires. A response that varies on any other
// header (Cookie and Authorization included, unless KeepPrivate, below)
// is not kept: its key cannot tell the requests apart. Headers on this
// list that the response does not vary on only make the key stricter,
// which can cost a fallback but never serves a wrong copy.
//
// Freshness directives (max-age, no-cache, must-revalidate, Expires) are
// not applied: the fallback is by design a stale-if-error copy, served
// only when the origin failed, and bounded by the fallback's MaxAge.
//
// With Transport.KeepPrivate the cache acts as a private cache for each
// set of credentials: the mark in the key becomes the SHA-256 of the
// request's Authorization and Cookie values, so a copy is served only to
// requests carrying exactly the same ones; private responses and
// responses to requests with credentials are kept under that key, and
// Vary: Authorization and Vary: Cookie are then told apart. no-store
// still holds (it binds private caches too, §5.2.2.5), and a response
// with Set-Cookie is kept without its Set-Cookie fields (a copy never
// sets a cookie), unless the request also has an Idempotency-Key: the
// idempotency layer keeps the same copy for replays, which need it
// whole, so the fallback keeps nothing.

// privacy is what a GET's request says about keeping its response in the
// fallback cache. It is set by fallbackKey, before the first attempt,
// and only read afterwards.
type privacy struct {
	keepPrivate bool // Transport.KeepPrivate
	credentials bool // the request carries Authorization or Cookie
	noStore     bool // the request says Cache-Control: no-store
}

// Marks that end the key of a request with credentials.
const (
	markAuthenticated = "\ncredentials"   // without KeepPrivate
	markCredentials   = "\ncredentials: " // with KeepPrivate, then the hex SHA-256
)

// negotiated returns the content-negotiation headers the fallback key
// tells apart (see above), in canonical form. (An array value: nothing
// is shared, nothing allocated.)
func negotiated() [6]string {
	return [...]string{"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Origin", "User-Agent"}
}

// fallbackKey returns the key under which the request's copy is kept and
// found in its executor's fallback cache, and records in rt.priv what the
// request says about keeping it. A request without negotiation headers
// and credentials costs the key's string and a few map lookups.
func (rt *roundTrip) fallbackKey() string {
	h := rt.req.Header
	p := &rt.priv
	p.keepPrivate = rt.t.KeepPrivate
	p.credentials = len(h["Authorization"]) > 0 || len(h["Cookie"]) > 0
	p.noStore = cacheControl(h["Cache-Control"])&ccNoStore != 0

	u := rt.req.URL.String()
	n := len("GET ") + len(u)
	for _, name := range negotiated() {
		for _, v := range h[name] {
			n += len("\n: ") + len(name) + len(v)
		}
	}
	var sum [sha256.Size]byte
	switch {
	case p.credentials && p.keepPrivate:
		sum = credentialSum(h)
		n += len(markCredentials) + hex.EncodedLen(len(sum))
	case p.credentials:
		n += len(markAuthenticated)
	}
	if n == len("GET ")+len(u) {
		return "GET " + u
	}

	b := make([]byte, 0, n)
	b = append(b, "GET "...)
	b = append(b, u...)
	for _, name := range negotiated() {
		for _, v := range h[name] {
			// A header value cannot hold a newline (http.Transport
			// refuses one), so the parts cannot run into each other.
			b = append(b, '\n')
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
		}
	}
	switch {
	case p.credentials && p.keepPrivate:
		b = append(b, markCredentials...)
		b = hex.AppendEncode(b, sum[:])
	case p.credentials:
		b = append(b, markAuthenticated...)
	}
	return string(b)
}

// mayKeep reports whether a 200 to the request, with the headers h, may
// be kept in the fallback cache (see above), and whether the kept copy
// must lose its Set-Cookie fields. idempotent is set when the
// idempotency layer keeps the same copy. It reads h without allocating.
func (p *privacy) mayKeep(h http.Header, idempotent bool) (keep, dropCookies bool) {
	if p.noStore {
		return false, false
	}
	cc := cacheControl(h["Cache-Control"])
	switch {
	case cc&ccNoStore != 0:
		return false, false
	case p.keepPrivate:
	case cc&ccPrivate != 0, p.credentials && cc&ccPublic == 0:
		return false, false
	}
	if len(h["Set-Cookie"]) > 0 {
		if !p.keepPrivate || idempotent {
			return false, false
		}
		dropCookies = true
	}
	for _, line := range h["Vary"] {
		for rest := line; rest != ""; {
			var name string
			name, rest = nextElement(rest)
			if name != "" && !p.tellsApart(name) {
				return false, false
			}
		}
	}
	return true, dropCookies
}

// tellsApart reports whether the fallback key separates requests whose
// values of the header name differ: name is a content-negotiation header
// (in any case), or a credential header when the key holds their hash or
// the request has none (its key then has no credential mark, which no
// request with credentials shares). "*" is not a header: never.
func (p *privacy) tellsApart(name string) bool {
	if sameToken(name, "Authorization") || sameToken(name, "Cookie") {
		return p.keepPrivate || !p.credentials
	}
	for _, n := range negotiated() {
		if sameToken(name, n) {
			return true
		}
	}
	return false
}

// credentialSum is the SHA-256 of the request's Authorization and Cookie
// values, each with its name, so that neither is kept in memory or in a
// store as it is.
func credentialSum(h http.Header) [sha256.Size]byte {
	d := sha256.New()
	for _, name := range [...]string{"Authorization", "Cookie"} {
		for _, v := range h[name] {
			d.Write([]byte(name))
			d.Write([]byte{0})
			d.Write([]byte(v))
			d.Write([]byte{0})
		}
	}
	var sum [sha256.Size]byte
	d.Sum(sum[:0])
	return sum
}

// scopedFingerprint returns the idempotency fingerprint fp of a request
// with the headers h, extended with the SHA-256 of its Authorization and
// Cookie values when it has any. The IETF idempotency-key draft scopes a
// key to its client: a duplicate sent with other credentials (another
// user who reuses, guesses or is handed the key) must not read the
// stored response of the first, so it fails with
// idempotency.ErrKeyReuse and sends nothing. A request without
// credentials keeps the plain body fingerprint, so records stored before
// this change still match.
func scopedFingerprint(fp string, h http.Header) string {
	if len(h["Authorization"]) == 0 && len(h["Cookie"]) == 0 {
		return fp
	}
	sum := credentialSum(h)
	return fp + ";credentials=" + hex.EncodeToString(sum[:])
}

// Cache-Control directives the fallback reads.
const (
	ccNoStore = 1 << iota
	ccPrivate
	ccPublic
)

// cacheControl returns the directives among no-store, private and public
// that the Cache-Control field lines carry (RFC 9111 §5.2: names are
// case-insensitive; a directive may have an argument, such as
// private="Set-Cookie"). It does not allocate.
func cacheControl(lines []string) int {
	set := 0
	for _, line := range lines {
		for rest := line; rest != ""; {
			var name string
			name, rest = nextElement(rest)
			if i := strings.IndexByte(name, '='); i >= 0 {
				name = strings.TrimSpace(name[:i])
			}
			switch {
			case sameToken(name, "no-store"):
				set |= ccNoStore
			case sameToken(name, "private"):
				set |= ccPrivate
			case sameToken(name, "public"):
				set |= ccPublic
			}
		}
	}
	return set
}

// nextElement splits a comma-separated field value (RFC 9110 §5.6.1)
// into its first element, without the spaces around it, and the rest.
func nextElement(s string) (elem, rest string) {
	if i := strings.IndexByte(s, ','); i >= 0 {
		s, rest = s[:i], s[i+1:]
	}
	return strings.TrimSpace(s), rest
}

// sameToken reports whether the tokens a and b (header or directive
// names, ASCII) are equal ignoring case. Names of other lengths are told
// apart at once; a non-ASCII name never equals an ASCII one, which only
// makes the rules above stricter.
func sameToken(a, b string) bool {
	return len(a) == len(b) && strings.EqualFold(a, b)
}

// explainKeyReuse names what may differ when the idempotency layer
// refused a duplicate: the layer speaks of a payload, which here is the
// body or the credentials (of this request or the first). Other errors
// are returned as they are.
func explainKeyReuse(err error) error {
	if !errors.Is(err, idempotency.ErrKeyReuse) {
		return err
	}
	return fmt.Errorf("bulwarkhttp: %s was first sent with another body or other credentials (Authorization, Cookie): %w", HeaderIdempotencyKey, err)
}
