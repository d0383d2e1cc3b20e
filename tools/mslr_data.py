#!/usr/bin/env python3
"""Write and check mslr-data files (format "mslr-data", version 1) with h5py and numpy.

As a library:

    import mslr_data
    mslr_data.write("data.h5", {
        "fish1": {"groups": {"stim": stim_T4, "neurons": dff_TN},
                  "props": {"neurons": xyz_N3},
                  "segments": [[0, 1000], [1000, 1800]],       # optional
                  "split": {"train": [[0, 1200]], "test": [[1200, 1800]]},  # optional: ranges or 0/1 masks [T]
                  "modes": {"stim": stim_modes_4K}},           # optional: given modes of fixed groups [d, K]
    })
    problems = mslr_data.check("data.h5")                       # [] when the file is valid

From the shell:

    mslr_data.py check data.h5          # prints each problem; exit status 1 if any
    mslr_data.py from-npz out.h5 fish1.npz fish2.npz ...
        each .npz holds arrays named group_<name> [T, d], props_<name> [d, k] and optionally segments [s, 2];
        the subject is named after the file.
"""
import os
import sys

import h5py
import numpy as np

FORMAT = "mslr-data"
VERSION = 1


def write(path, subjects, attrs=None):
    """Write `subjects` ({name: {"groups": {g: [T, d]}, "props": {g: [d, k]}, "segments": [s, 2],
    "split": {"train": [k, 2] or mask [T], "test": ...}, "modes": {g: [d, K]},
    "truth": {"means": {g: [T, d]}, ...}}}) to `path`, replacing it. Raises ValueError on inconsistent input,
    naming the subject and group."""
    for name, s in subjects.items():
        _check_arrays(name, s)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        for name, s in subjects.items():
            g = f.create_group("subjects/" + name)
            for grp, x in s["groups"].items():
                g["groups/" + grp] = np.asarray(x, dtype=np.float32)
            for grp, p in s.get("props", {}).items():
                g["props/" + grp] = np.asarray(p, dtype=np.float32)
            if s.get("segments") is not None:
                g["segments"] = np.asarray(s["segments"], dtype=np.int64)
            for part, x in s.get("split", {}).items():
                x = np.asarray(x)
                # A mask as 0/1 bytes: h5py would store numpy booleans as an enumeration, not numbers.
                g["split/" + part] = x.astype(np.uint8) if x.ndim == 1 else x.astype(np.int64)
            for grp, m in s.get("modes", {}).items():
                g["modes/" + grp] = np.asarray(m, dtype=np.float32)
            _write_tree(g, "truth", s.get("truth", {}))
    os.replace(tmp, path)


def _write_tree(parent, key, tree):
    for k, v in tree.items():
        if isinstance(v, dict):
            _write_tree(parent, key + "/" + k, v)
        else:
            parent[key + "/" + k] = np.asarray(v, dtype=np.float32)


def _check_arrays(name, s):
    groups = s.get("groups", {})
    if not groups:
        raise ValueError(f"subject '{name}': no groups")
    lengths = {g: np.shape(x)[0] for g, x in groups.items()}
    for g, x in groups.items():
        if np.ndim(x) != 2:
            raise ValueError(f"subject '{name}', group '{g}': must be [T, d], has {np.ndim(x)} dimensions")
        if not np.all(np.isfinite(x)):
            t, j = np.argwhere(~np.isfinite(np.asarray(x)))[0]
            raise ValueError(f"subject '{name}', group '{g}': non-finite value at time {t}, variable {j}")
    if len(set(lengths.values())) > 1:
        raise ValueError(f"subject '{name}': groups differ in length: {lengths}")
    for g, p in s.get("props", {}).items():
        if g not in groups:
            raise ValueError(f"subject '{name}': properties for group '{g}', which it does not have")
        if np.ndim(p) != 2 or np.shape(p)[0] != np.shape(groups[g])[1]:
            raise ValueError(f"subject '{name}': properties of group '{g}' have {np.shape(p)[0]} rows, the group "
                             f"has {np.shape(groups[g])[1]} variables")


def check(path):
    """Return a list of problems with the mslr-data file at `path` (empty when valid)."""
    problems = []
    if not os.path.exists(path):
        return [f"{path}: no such file"]
    if not h5py.is_hdf5(path):
        return [f"{path}: not an HDF5 file"]
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT:
            problems.append(f"{path}: format attribute is {fmt!r}, expected {FORMAT!r}")
        if f.attrs.get("version") != VERSION:
            problems.append(f"{path}: version is {f.attrs.get('version')!r}, expected {VERSION}")
        if "subjects" not in f:
            return problems + [f"{path}: no /subjects group"]
        if len(f["subjects"]) == 0:
            problems.append(f"{path}: /subjects is empty")
        for name, s in f["subjects"].items():
            where = f"{path}: subject '{name}'"
            if "groups" not in s or len(s["groups"]) == 0:
                problems.append(f"{where}: no groups")
                continue
            lengths = {}
            for g, x in s["groups"].items():
                if x.ndim != 2:
                    problems.append(f"{where}, group '{g}': must be [T, d], has {x.ndim} dimensions")
                    continue
                lengths[g] = x.shape[0]
                data = x[...]
                if not np.all(np.isfinite(data)):
                    t, j = np.argwhere(~np.isfinite(data))[0]
                    problems.append(f"{where}, group '{g}': non-finite value at time {t}, variable {j}")
            if len(set(lengths.values())) > 1:
                problems.append(f"{where}: groups differ in length: {lengths}")
            for g, p in s.get("props", {}).items():
                if g not in s["groups"]:
                    problems.append(f"{where}: properties for group '{g}', which it does not have")
                elif p.ndim != 2 or p.shape[0] != s["groups"][g].shape[1]:
                    problems.append(f"{where}: properties of group '{g}' have {p.shape[0]} rows, the group has "
                                    f"{s['groups'][g].shape[1]} variables")
            if "segments" in s:
                seg = s["segments"][...]
                t = max(lengths.values()) if lengths else 0
                if seg.ndim != 2 or seg.shape[1] != 2:
                    problems.append(f"{where}: segments must be [k, 2]")
                else:
                    end = 0
                    for i, (a, b) in enumerate(seg):
                        if a < end or a >= b or b > t:
                            problems.append(f"{where}: segment {i} [{a}, {b}) must be non-empty, after the previous "
                                            f"one and within [0, {t})")
                        end = b
    return problems


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        problems = [p for path in argv[1:] for p in check(path)]
        for p in problems:
            print(p)
        if not problems:
            print("ok: " + ", ".join(argv[1:]))
        return 1 if problems else 0
    if len(argv) >= 3 and argv[0] == "from-npz":
        subjects = {}
        for npz in argv[2:]:
            z = np.load(npz)
            name = os.path.splitext(os.path.basename(npz))[0]
            subjects[name] = {
                "groups": {k[6:]: z[k] for k in z.files if k.startswith("group_")},
                "props": {k[6:]: z[k] for k in z.files if k.startswith("props_")},
                "segments": z["segments"] if "segments" in z.files else None,
            }
        try:
            write(argv[1], subjects)
        except ValueError as e:
            print(f"mslr_data.py: {e}", file=sys.stderr)
            return 1
        print(f"wrote {argv[1]}: {len(subjects)} subjects")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
