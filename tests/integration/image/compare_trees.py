#!/usr/bin/env python3
"""Compares two root filesystems file by file: the same paths, file types, symlink targets, file
contents and permission bits (setuid/setgid excepted: rootless unpackers drop them). Directory
permissions are compared on their group/other bits only, since unpackers differ on whether the
owner gets rwx. Exits 1 listing every difference."""
import hashlib
import os
import stat
import sys


def describe(root):
    entries = {}
    for directory, subdirs, files in os.walk(root):
        for name in subdirs + files:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            mode = stat.S_IMODE(info.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[relative] = ("dir", oct(mode & 0o1077))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                entries[relative] = ("file", oct(mode), digest)
            else:
                entries[relative] = ("other", stat.S_IFMT(info.st_mode))
    return entries


def main():
    left, right = describe(sys.argv[1]), describe(sys.argv[2])
    problems = []
    for path in sorted(set(left) | set(right)):
        if path not in left:
            problems.append(f"only in {sys.argv[2]}: {path}")
        elif path not in right:
            problems.append(f"only in {sys.argv[1]}: {path}")
        elif left[path] != right[path]:
            problems.append(f"differs: {path}: {left[path]} vs {right[path]}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"trees match: {len(left)} entries")


if __name__ == "__main__":
    main()
