"""Native tests: `python3 -m unittest`, on in-memory events."""

import json
import unittest

from rules import ConfigError, owner_kind, parse_config, verdict


class Event:
    """An in-memory stand-in for herald's event handle."""

    def __init__(self, obj):
        self.obj = obj

    def _at(self, pointer):
        value = self.obj
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(value, list) and token.isdigit() and int(token) < len(value):
                value = value[int(token)]
            else:
                value = value.get(token) if isinstance(value, dict) else None
        return value

    def namespace(self):
        return self.obj.get("metadata", {}).get("namespace")

    def name(self):
        return self.obj.get("metadata", {}).get("name")

    def get(self, pointer):
        value = self._at(pointer)
        return None if value is None else json.dumps(value)

    def get_string(self, pointer):
        value = self._at(pointer)
        return value if isinstance(value, str) else None


def pod(namespace):
    return Event({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "web-1", "namespace": namespace,
                               "ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]}})


class RulesTest(unittest.TestCase):
    def test_passes_watched_namespaces_and_drops_the_rest(self):
        namespaces = parse_config('{"namespaces": ["shop"]}')
        self.assertIsNone(verdict(namespaces, pod("shop")))
        self.assertEqual(verdict(namespaces, pod("dev")), "namespace dev is not watched")
        node = Event({"kind": "Node", "metadata": {"name": "n"}})
        self.assertEqual(verdict(namespaces, node), "cluster-scoped")
        self.assertEqual(owner_kind(pod("shop")), "ReplicaSet")
        self.assertIsNone(owner_kind(node))

    def test_a_config_mistake_is_an_init_error(self):
        with self.assertRaisesRegex(ConfigError, "unknown field `namespace`"):
            parse_config('{"namespace": ["shop"]}')
        with self.assertRaisesRegex(ConfigError, "at least one"):
            parse_config('{"namespaces": []}')


if __name__ == "__main__":
    unittest.main()
