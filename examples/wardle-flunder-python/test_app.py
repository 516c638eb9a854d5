"""Unit tests of the Python Flunder's logic, run natively by CPython (no Wasm):
    PYTHONPATH=target/py-bindings:guests/python:examples/wardle-flunder-python \
      target/tools/python/bin/python -m unittest discover -s examples/wardle-flunder-python
"""

import unittest

import app


class BanFlunder(unittest.TestCase):
    def test_a_name_a_fischer_disallows_is_banned(self):
        fischers = [{"metadata": {"name": "a"}, "disallowedFlunders": ["x", "y"]},
                    {"metadata": {"name": "b"}}]
        self.assertTrue(app.banned("y", fischers))
        self.assertFalse(app.banned("z", fischers))
        self.assertFalse(app.banned("y", []))

    def test_it_declares_the_read(self):
        r = app.Flunder().describe()
        self.assertEqual([(x.group, x.version, x.resource) for x in r.reads],
                         [("wardle.example.com", "v1alpha1", "fischers")])


if __name__ == "__main__":
    unittest.main()
