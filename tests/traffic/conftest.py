import pytest

from tests.traffic import servers


@pytest.fixture
def server_factory():
    made = []

    def make(behave, **kw):
        s = servers.Server(behave, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
