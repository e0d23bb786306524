package engine

import (
	"encoding/base64"
)

// Page sizes: a list asked with page_size 0 gets DefaultPageSize items, and no
// page is larger than MaxPageSize, which bounds the work one call can ask for.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// page is a decoded list position: the key of the last item returned, and how
// many items to return.
type page struct {
	after string
	size  int
}

// readPage checks page_size and page_token. Tokens are opaque to clients
// (base64url of the last key), so a token from one list used in another only
// starts it at an odd place; it never reads outside the list.
func readPage(size int32, token string) (page, error) {
	var v validation
	p := page{size: int(size)}
	switch {
	case size < 0:
		v.add("pageSize", "must not be negative")
	case size == 0:
		p.size = DefaultPageSize
	case size > MaxPageSize:
		p.size = MaxPageSize
	}
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(after) == 0 {
			v.add("pageToken", "is not a token this server issued")
		}
		p.after = string(after)
	}
	return p, v.err()
}

// limit is how many items to ask the store for: one more than the page, so
// finishPage knows whether another page follows.
func (p page) limit() int { return p.size + 1 }

// finishPage cuts items to the page and returns the token of the next page,
// or "" when there is none.
func finishPage[T any](items []T, p page, key func(T) string) ([]T, string) {
	if len(items) <= p.size {
		return items, ""
	}
	items = items[:p.size]
	return items, encodePageToken(key(items[len(items)-1]))
}

// encodePageToken makes a page token from the key of the last item returned.
func encodePageToken(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key))
}
