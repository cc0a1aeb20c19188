"""Jobs of the reader's program: `process` does its work in its own loop and in short calls."""


class Store:
    """The program's state: tasks in a dict, saved after each batch."""

    def __init__(self):
        self.data = {"next_id": 1, "tasks": []}

    def snapshot(self):
        return dict(self.data)

    def save(self, task):
        self.data["tasks"].append(task)
        self.data["next_id"] += 1
        return task["id"]


def score(item):
    return (item * 7919) % 1000


def process(store, batch):
    total = 0
    for item in range(40_000):
        total += score(item) % 7
    return store.save({"id": store.data["next_id"], "batch": batch, "total": total})
