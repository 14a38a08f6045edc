"""Validates an XML file against an XSD with lxml: the tests' replacement for xmllint.

usage: validate_xsd.py SCHEMA.xsd FILE.xml
Exit 0 when valid; 1 with every schema error (line: message) on stderr otherwise.
"""
import sys

from lxml import etree


def main() -> int:
    schema_path, xml_path = sys.argv[1], sys.argv[2]
    schema = etree.XMLSchema(etree.parse(schema_path))
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    document = etree.parse(xml_path, parser)
    if schema.validate(document):
        return 0
    for error in schema.error_log:
        print(f"{xml_path}:{error.line}: {error.message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
