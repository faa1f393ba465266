"""The throwaway Virtuoso's configuration (crlm_kg.virtuoso.write_config), checked without starting a server."""

from __future__ import annotations

import configparser

from crlm_kg.virtuoso import write_config

TEMPLATE = """[Database]
DatabaseFile = /var/lib/virtuoso-opensource-7/db/virtuoso.db
[Parameters]
ServerPort = 1111
DirsAllowed = ., /usr/share/virtuoso-opensource-7/vad
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
[HTTPServer]
ServerPort = 8890
"""


def _written(tmp_path, **kwargs) -> configparser.RawConfigParser:
    template = tmp_path / "template.ini"
    template.write_text(TEMPLATE)
    scratch = tmp_path / "db"
    scratch.mkdir()
    ini = configparser.RawConfigParser(strict=False)
    ini.optionxform = str
    ini.read(write_config(scratch, 18890, 11111, template=template, **kwargs))
    return ini


def test_buffers_and_load_directories_are_configured(tmp_path):
    dump_dir = tmp_path / "dump"
    ini = _written(tmp_path, buffers=300_000, allowed=[dump_dir])
    assert ini.get("Parameters", "NumberOfBuffers") == "300000"
    assert ini.get("Parameters", "MaxDirtyBuffers") == "225000"
    allowed = [d.strip() for d in ini.get("Parameters", "DirsAllowed").split(",")]
    assert allowed == [".", "/usr/share/virtuoso-opensource-7/vad", str(tmp_path / "db"), str(dump_dir)]
    assert ini.get("Parameters", "VectorSize") == "1"
    assert ini.get("Database", "DatabaseFile") == str(tmp_path / "db" / "virtuoso.db")
    assert (ini.get("Parameters", "ServerPort"), ini.get("HTTPServer", "ServerPort")) == ("11111", "18890")


def test_without_buffers_the_templates_sizes_stay(tmp_path):
    ini = _written(tmp_path)
    assert (ini.get("Parameters", "NumberOfBuffers"), ini.get("Parameters", "MaxDirtyBuffers")) == ("10000", "6000")
    assert [d.strip() for d in ini.get("Parameters", "DirsAllowed").split(",")][-1] == str(tmp_path / "db")
