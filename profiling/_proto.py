"""Core ML protobuf classes without importing the coremltools package.

``import coremltools`` pulls in torch (seconds of start-up, and the lint must run
where torch is absent). The generated ``*_pb2`` modules only use relative imports,
so they can be loaded as a private package straight from coremltools' install dir.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

_ALIAS = "_perfboard_coreml_proto"


def _proto_package() -> str:
    # Reuse coremltools' own classes when it is already imported (avoids two class sets).
    if "coremltools.proto.Model_pb2" in sys.modules:
        return "coremltools.proto"
    if _ALIAS not in sys.modules:
        spec = importlib.util.find_spec("coremltools")  # does not execute coremltools/__init__
        if spec is None or not spec.origin:
            raise ImportError("coremltools is not installed; it provides the Core ML protobuf schema")
        proto_dir = os.path.join(os.path.dirname(spec.origin), "proto")
        pkg_spec = importlib.util.spec_from_file_location(
            _ALIAS, os.path.join(proto_dir, "__init__.py"), submodule_search_locations=[proto_dir]
        )
        module = importlib.util.module_from_spec(pkg_spec)
        sys.modules[_ALIAS] = module
        pkg_spec.loader.exec_module(module)
    return _ALIAS


def model_pb2():
    return importlib.import_module(_proto_package() + ".Model_pb2")


def mil_pb2():
    return importlib.import_module(_proto_package() + ".MIL_pb2")
