"""Tests of scripts/prepare_data.py's own parsing and rules (run by scripts/test.sh):
`python3 -m unittest discover -s scripts -p 'test_*.py'`."""

import argparse
import struct
import tempfile
import unittest
import zlib
from pathlib import Path

import prepare_data


def rcc_blob(files):
    """A version-3 Qt resource file holding `files` ({"dir/name": (bytes, compress)}) in one
    directory level, laid out as Qt's rcc tool does: header, data, names, tree."""
    dirs = {}
    for path in files:
        d, name = path.split("/")
        dirs.setdefault(d, []).append(name)
    names, name_offsets = b"", {}
    for n in sorted({*dirs, *(n for ns in dirs.values() for n in ns)}):
        name_offsets[n] = len(names)
        utf16 = n.encode("utf-16-be")
        names += struct.pack(">HI", len(n), 0) + utf16
    data, data_offsets = b"", {}
    for path, (payload, compress) in files.items():
        if compress:
            payload = struct.pack(">I", len(payload)) + zlib.compress(payload)
        data_offsets[path] = len(data)
        data += struct.pack(">I", len(payload)) + payload
    # nodes: 0 root, 1.. the directories, then each directory's files
    nodes, order = [], sorted(dirs)
    first_file = 1 + len(order)
    nodes.append(struct.pack(">IHII", 0, 2, len(order), 1) + bytes(8))
    file_nodes = []
    for d in order:
        nodes.append(struct.pack(">IHII", name_offsets[d], 2, len(dirs[d]),
                                 first_file + len(file_nodes)) + bytes(8))
        for n in dirs[d]:
            path = f"{d}/{n}"
            flags = 1 if files[path][1] else 0
            file_nodes.append(struct.pack(">IHHHI", name_offsets[n], flags, 0, 0,
                                          data_offsets[path]) + bytes(8))
    tree = b"".join(nodes + file_nodes)
    header = 24
    return (struct.pack(">4sIIIII", b"qres", 3, header + len(data) + len(names), header,
                        header + len(data), 0) + data + names + tree)


class RccTest(unittest.TestCase):
    README = (b"Copyright: Someone\nLicense: CC-BY-SA 4.0\nFiles:\nicon.svg\n\n"
              b"Copyright: A. Photographer\nLicense: CC0-1.0\n"
              b"Source: https://commons.wikimedia.org/wiki/File:Cat.jpg\nFiles: cat.webp\n")
    FILES = {"photos/cat.webp": (b"RIFF-cat", False), "photos/README": (README, True),
             "other/dog.webp": (b"RIFF-dog", False)}

    def test_members_with_their_paths_and_bytes(self):
        members = dict(prepare_data.rcc_members(rcc_blob(self.FILES)))
        self.assertEqual(members, {f"/{p}": b for p, (b, _) in self.FILES.items()})

    def test_not_a_resource_file(self):
        with self.assertRaises(ValueError):
            list(prepare_data.rcc_members(b"RIFF" + bytes(40)))

    def test_a_truncated_resource_file_is_a_clear_error(self):
        blob = rcc_blob(self.FILES)
        with self.assertRaisesRegex(ValueError, "truncated or corrupt"):
            list(prepare_data.rcc_members(blob[:len(blob) - 30]))

    def test_selected_members_are_written_once_named_after_their_resource_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "app").mkdir()
            (root / "app/erase.rcc").write_bytes(rcc_blob(self.FILES))
            (root / "app/plain.jpg").write_bytes(b"jpeg")
            got = prepare_data.selected_files(root, ["app/erase.rcc:*.webp", "app/*.jpg"])
            self.assertEqual([(p.name, licence) for p, licence in got],
                             [("erase_cat.webp", "CC0-1.0"), ("erase_dog.webp", None),
                              ("plain.jpg", None)])
            self.assertEqual(got[0][0].read_bytes(), b"RIFF-cat")
            self.assertEqual(got[0][0].parent, root / "app/erase.rcc.members")

    def test_readme_licences_per_file(self):
        got = prepare_data.readme_licences(self.README.decode()
                                           + "\nLicense: GPLv3\nFiles:\na/x.ogg\nb/y.ogg\n")
        self.assertEqual(got, {"icon.svg": "CC-BY-SA 4.0", "cat.webp": "CC0-1.0",
                               "x.ogg": "GPLv3", "y.ogg": "GPLv3"})


class TilingSidesTest(unittest.TestCase):
    def sides(self, max_side, extra_side, cap):
        args = argparse.Namespace(max_side=max_side, extra_side=extra_side)
        return prepare_data.tiling_sides(args, cap)

    def test_without_a_cap_the_usual_sides(self):
        self.assertEqual(self.sides(2040, 1020, 0), [2040, 1020])
        self.assertEqual(self.sides(2040, 0, 0), [2040])
        self.assertEqual(self.sides(0, 0, 0), [0])

    def test_a_cap_lowers_and_merges_the_sides(self):
        self.assertEqual(self.sides(2040, 1020, 1020), [1020])
        self.assertEqual(self.sides(2040, 600, 1020), [1020, 600])
        self.assertEqual(self.sides(0, 0, 1020), [1020])


class CopyrightTest(unittest.TestCase):
    COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2022-2024, Upstream
License: CC0-1.0
 To the extent possible under law ...

Files: debian/*
Copyright: 2023, Packager
License: GPL-2+

Files: backgrounds/named.jpg
 backgrounds/other.jpg
Copyright: 2021, Photographer
License: CC-BY-4.0
"""

    def licence(self, name):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "copyright"
            path.write_text(self.COPYRIGHT)
            stanzas = prepare_data.copyright_licences(path)
        return prepare_data.licence_for(stanzas, name, "see copyright")

    def test_files_star_covers_upstream_files_not_the_packaging(self):
        self.assertEqual(self.licence("tea-gardens.jpg"), "CC0-1.0")

    def test_a_named_stanza_wins_over_files_star(self):
        self.assertEqual(self.licence("named.jpg"), "CC-BY-4.0")
        self.assertEqual(self.licence("other.jpg"), "CC-BY-4.0")


class SplitTest(unittest.TestCase):
    def test_more_packages_never_validate(self):
        digest = "00000000" + "f" * 56  # a digest that puts a wallpaper into validation
        self.assertTrue(prepare_data.is_val("mate-backgrounds", "x.jpg", digest))
        for package in prepare_data.MORE:
            self.assertFalse(prepare_data.is_val(package, "x.jpg", digest))

    def test_man_made_photographs_are_held_out_and_val_only_packages_give_nothing_else(self):
        digest = "00000001" + "f" * 56  # not one in eight: a training photograph
        for package, names in prepare_data.MANMADE_VAL.items():
            self.assertIn(package, prepare_data.MORE)
            for name in names:
                # listed in MORE's selection, so the package's run reads it
                self.assertIn(f"backgrounds/budgie/{name}", prepare_data.MORE[package]["files"])
                for val_only in [(), (package,)]:
                    self.assertEqual(
                        prepare_data.split_of(package, name, digest, val_only), "val-manmade")
            self.assertEqual(prepare_data.split_of(package, "tea-gardens.jpg", digest), "train")
            self.assertIsNone(
                prepare_data.split_of(package, "tea-gardens.jpg", digest, (package,)))
        self.assertEqual(prepare_data.split_of("mate-backgrounds", "x.jpg", digest), "train")


if __name__ == "__main__":
    unittest.main()
