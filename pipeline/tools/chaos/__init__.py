"""The fault suite: crashes, broker and registry outages and bad news, with nothing lost."""
