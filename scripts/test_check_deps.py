"""Tests of scripts/check_deps.py's pure parts: Debian relation fields and the closure."""

import tempfile
import unittest
from pathlib import Path

import check_deps


class RelationTest(unittest.TestCase):
    def test_versions_arches_and_alternatives(self):
        field = "libc6 (>= 2.34), libc6-dev | libc-dev, python3:any (>= 3.11~), , foo [amd64]"
        self.assertEqual(
            check_deps.parse_relation_names(field),
            [["libc6"], ["libc6-dev", "libc-dev"], ["python3"], ["foo"]],
        )


class ClosureTest(unittest.TestCase):
    def test_follows_depends_alternatives_and_providers(self):
        depends = {
            "top": [["mid"], ["missing", "alt"], ["virtual"]],
            "mid": [["leaf"]],
            "alt": [],
            "leaf": [],
            "provider": [],
            "unrelated": [],
        }
        providers = {"virtual": ["provider"]}
        self.assertEqual(
            check_deps.closure(["top"], depends, providers),
            {"top", "mid", "leaf", "alt", "provider"},
        )


class ListTest(unittest.TestCase):
    def test_comments_and_blank_lines_are_skipped(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "packages.txt"
            path.write_text("# header\n\nfoo\nbar  # why\n   \n")
            self.assertEqual(check_deps.listed_packages(path), ["foo", "bar"])


if __name__ == "__main__":
    unittest.main()
