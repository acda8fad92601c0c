"""Native tests (`python3 -m unittest`): the filter's logic on in-memory
events, with the Rust label-filter's verdicts."""

import unittest

from label_filter import ConfigError, escape, parse_config, verdict


class Pod:
    """An event as herald lends it, reduced to what the filter reads."""

    def __init__(self, labels):
        self.object = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "p", "namespace": "n", "labels": labels}}

    def get_string(self, pointer):
        value = self.object
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            value = value.get(token) if isinstance(value, dict) else None
        return value if isinstance(value, str) else None


class LabelFilterTest(unittest.TestCase):
    def test_passes_matching_and_drops_others_with_the_reason(self):
        labels = parse_config('{"labels":{"app":"web"}}')
        self.assertIsNone(verdict(labels, Pod({"app": "web"})))
        self.assertEqual(verdict(labels, Pod({"app": "db"})), "label app=db, want web")
        self.assertEqual(verdict(labels, Pod({})), "label app missing, want web")

    def test_labels_are_checked_in_key_order_and_keys_with_slash_are_escaped(self):
        labels = parse_config('{"labels":{"tier":"front","app.kubernetes.io/name":"web"}}')
        self.assertEqual(verdict(labels, Pod({"tier": "back"})),
                         "label app.kubernetes.io/name missing, want web")
        self.assertIsNone(verdict(labels, Pod({"tier": "front", "app.kubernetes.io/name": "web"})))
        self.assertEqual(escape("a~b/c"), "a~0b~1c")

    def test_a_config_mistake_is_an_error_that_names_it(self):
        for text, message in [
            ('{"label":{"app":"web"}}', "unknown field `label`"),
            ('{"labels":{}}', "at least one label"),
            ("{}", "missing field `labels`"),
            ('{"labels":{"app":1}}', "labels.app: expected a string"),
        ]:
            with self.assertRaisesRegex(ConfigError, message):
                parse_config(text)


if __name__ == "__main__":
    unittest.main()
