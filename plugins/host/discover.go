package host

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// discover lists hark-source-<type> executables in dir. hark runs whatever
// they hold, so a binary someone other than hark's user (or root) could
// change is refused, and so is every binary of a directory such a someone
// could write: they could swap a binary by renaming another over it, or add
// one. That includes world-writable directories with the sticky bit (like
// /tmp): the bit stops others from replacing a file they do not own, not
// from adding a new hark-source-<type>. For a symlink, the file it resolves
// to and that file's directory are checked.
func discover(dir string, log *slog.Logger) (map[string]string, error) {
	found := map[string]string{}
	if dir == "" {
		return found, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return found, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plugin dir: %w", err)
	}
	if why, err := replaceable(dir); err != nil || why != "" {
		log.Error("refuse every plugin in the plugin dir: it is "+why+", so someone else could add or replace what hark runs", "path", dir, "err", err)
		return found, nil
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), BinaryPrefix)
		if !ok || name == "" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			log.Warn("skip plugin", "path", path, "err", err)
			continue
		}
		fi, err := os.Stat(real)
		if err != nil {
			log.Warn("skip plugin", "path", path, "err", err)
			continue
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			log.Warn("skip plugin: not an executable file", "path", path)
			continue
		}
		if why := replaceableInfo(fi); why != "" {
			log.Error("refuse plugin: it is "+why+", so someone else could replace what hark runs", "path", path, "file", real)
			continue
		}
		if realDir := filepath.Dir(real); realDir != filepath.Clean(dir) {
			if why, err := replaceable(realDir); err != nil || why != "" {
				log.Error("refuse plugin: the directory holding it is "+why+", so someone else could replace what hark runs", "path", path, "dir", realDir, "err", err)
				continue
			}
		}
		found[name] = path
	}
	return found, nil
}

// replaceable is replaceableInfo of the file at path; a file that cannot be
// examined counts as replaceable.
func replaceable(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "not checkable", err
	}
	return replaceableInfo(fi), nil
}

// replaceableInfo says why someone other than hark's user or root could
// change a file or directory, or "" when nobody can.
func replaceableInfo(fi fs.FileInfo) string {
	switch perm := fi.Mode().Perm(); {
	case perm&0o002 != 0:
		return "world-writable"
	case perm&0o020 != 0:
		return "group-writable"
	}
	if uid, ok := fileOwner(fi); ok && uid != 0 && uid != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d (neither root nor hark's user)", uid)
	}
	return ""
}
