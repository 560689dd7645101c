#!/usr/bin/env python3
"""cuda_stack.py without a GPU: the version rule, where it looks, and what it prints when
no NVRTC found fits the driver. Standard library only:

    python3 benches/gpu/test_cuda_stack.py
"""
import contextlib
import io
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_stack  # noqa: E402


class Fits(unittest.TestCase):
    def test_cubin_needs_the_drivers_major_version(self):
        self.assertIsNone(cuda_stack.fits((13, 2), [80, 90], (13, 0), 90))
        self.assertIn("13.x driver", cuda_stack.fits((13, 0), [80, 90], (12, 8), 90))

    def test_ptx_needs_an_nvrtc_no_newer_than_the_driver(self):
        self.assertIsNone(cuda_stack.fits((13, 0), [80, 90], (13, 0), 120))
        self.assertIn("PTX", cuda_stack.fits((13, 2), [80, 90], (13, 0), 120))


class Main(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.lib = os.path.join(self.dir.name, "nvidia", "cu13", "lib")
        os.makedirs(self.lib)
        open(os.path.join(self.lib, cuda_stack.NAME), "w").close()

    def tearDown(self):
        self.dir.cleanup()

    def run_main(self, nvrtc, driver):
        out = io.StringIO()
        env = {"LD_LIBRARY_PATH": ""}
        # Only the made-up pip folder: none of this machine's own libraries.
        with mock.patch.object(cuda_stack, "nvrtc_info", return_value=nvrtc), \
                mock.patch.object(cuda_stack, "driver_info", return_value=driver), \
                mock.patch.object(cuda_stack, "loader_cache", return_value=[]), \
                mock.patch.object(cuda_stack, "toolkit_dirs", return_value=[]), \
                mock.patch.object(cuda_stack.site, "getsitepackages", return_value=[]), \
                mock.patch.object(cuda_stack.site, "getusersitepackages", return_value=""), \
                mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
            rc = cuda_stack.main(["--python-dirs", self.dir.name])
        return rc, out.getvalue()

    def test_a_pip_nvrtc_is_found_and_chosen(self):
        rc, out = self.run_main(((13, 0), [80, 90]), ((13, 0), "NVIDIA H200", 90))
        self.assertEqual(rc, 0, out)
        self.assertIn("device: NVIDIA H200 (sm_90)", out)
        self.assertIn("driver: CUDA 13.0", out)
        self.assertTrue(out.rstrip().endswith(f"nvrtc_dir: {self.lib}"), out)

    def test_an_nvrtc_the_driver_refuses_stops_with_both_versions(self):
        rc, out = self.run_main(((13, 2), [80]), ((13, 0), "NVIDIA H200", 90))
        self.assertEqual(rc, 3, out)
        self.assertIn("incompatible", out)
        self.assertIn("NVRTC 13.2", out)
        self.assertIn("driver 13.0", out)
        self.assertIn("pip install nvidia-cuda-nvrtc==13.0.*", out)
        self.assertNotIn("nvrtc_dir:", out)

    def test_none_found_says_where_it_looked(self):
        os.remove(os.path.join(self.lib, cuda_stack.NAME))
        with mock.patch.object(cuda_stack, "candidates", return_value=[]):
            rc, out = self.run_main(None, "no CUDA driver: test")
        self.assertEqual(rc, 2, out)
        self.assertIn("not found", out)


if __name__ == "__main__":
    unittest.main()
