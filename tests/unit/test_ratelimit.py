from bambu_edge.web.ratelimit import LoginThrottle, TokenBucketLimiter


def test_200_per_minute_then_429_then_recovers():
    lim = TokenBucketLimiter(per_minute=200)
    assert all(lim.check("10.0.0.2", 0.0) == 0.0 for _ in range(200))
    wait = lim.check("10.0.0.2", 0.0)
    assert 0.0 < wait <= 0.31  # one request's worth of refill at 200/min
    assert lim.check("10.0.0.3", 0.0) == 0.0  # other clients are not affected
    assert lim.check("10.0.0.2", 0.4) == 0.0  # refilled


def test_limiter_memory_is_bounded():
    lim = TokenBucketLimiter(per_minute=10, max_clients=100)
    for i in range(1000):
        lim.check(f"c{i}", float(i))
    assert len(lim) == 100


def test_login_delays_grow_after_two_free_mistakes_and_success_clears():
    t = LoginThrottle(base_s=1.0, cap_s=300.0)
    assert t.failed("a", 0.0) == 0.0
    assert t.failed("a", 0.0) == 0.0
    assert [t.failed("a", 0.0) for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert t.retry_after("a", 1.0) == 7.0
    assert t.retry_after("b", 1.0) == 0.0  # another client can still log in
    for _ in range(30):
        t.failed("a", 0.0)
    assert t.retry_after("a", 0.0) == 300.0  # capped
    t.succeeded("a")
    assert t.retry_after("a", 0.0) == 0.0


def test_login_failures_are_forgotten_after_an_hour():
    t = LoginThrottle(base_s=1.0, forget_s=3600.0)
    for _ in range(5):
        t.failed("a", 0.0)
    assert t.retry_after("a", 3601.0) == 0.0
    assert t.failed("a", 3601.0) == 0.0  # counting starts over
