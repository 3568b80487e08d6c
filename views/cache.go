package views

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
)

// Cache keeps local copies of lake objects for DuckDB, which cannot read
// s3:// here (no httpfs). Copies are keyed by ETag, so a replaced object is
// fetched again and an unchanged one never is.
type Cache struct {
	dir   string
	store objstore.Bucket
}

// NewCache returns a cache in dir.
func NewCache(dir string, store objstore.Bucket) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	return &Cache{dir: dir, store: store}, nil
}

// Dir is the cache's folder.
func (c *Cache) Dir() string { return c.dir }

// Path returns a local path holding the object's content at etag.
func (c *Cache) Path(ctx context.Context, key, etag string) (string, error) {
	name := strings.NewReplacer("/", "_", "=", "-").Replace(key) + "." + strings.Trim(etag, `"`) + filepath.Ext(key)
	path := filepath.Join(c.dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	data, info, err := c.store.Get(ctx, key)
	if err != nil {
		return "", fmt.Errorf("fetch %s for DuckDB: %w", key, err)
	}
	if etag != "" && strings.Trim(info.ETag, `"`) != strings.Trim(etag, `"`) {
		return "", fmt.Errorf("fetch %s: the lake has ETag %s, the manifest names %s", key, info.ETag, etag)
	}
	tmp, err := os.CreateTemp(c.dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp.Name(), path)
}

// Views returns local paths of view partitions.
func (c *Cache) Views(ctx context.Context, files []lake.ViewFile) ([]string, error) {
	out := make([]string, 0, len(files))
	for _, f := range files {
		p, err := c.Path(ctx, f.Key, f.ETag)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Files returns local paths of manifest files.
func (c *Cache) Files(ctx context.Context, files []lake.File) ([]string, error) {
	out := make([]string, 0, len(files))
	for _, f := range files {
		p, err := c.Path(ctx, f.Key, f.ETag)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
