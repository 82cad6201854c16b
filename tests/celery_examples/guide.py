"""Snippets of Celery's Tasks and Calling guides, imports changed (Redis stands in for the guides' own
resources: the "revoked" set, the "database" and the Twitter client are small Redis-backed stand-ins)."""

# The guides' code as Celery writes it, kept as is:
# ruff: noqa: B007, B904, UP030, UP032

import os

import redis as redis_lib

from tasks import Ignore, Task, task

redis = redis_lib.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


class FailWhaleError(Exception):
    pass


class Twitter:
    """The Calling guide's Twitter client: fails while the 'twitter:down' counter is above zero."""

    FailWhaleError = FailWhaleError
    LoginError = PermissionError

    def __init__(self, oauth):
        self.oauth = oauth

    def update_status(self, tweet):
        if redis.decr("twitter:down") >= 0:
            raise FailWhaleError("fail whale")
        redis.rpush("tweets", tweet)


# Tasks guide: "Custom states"
@task(bind=True)
def upload_files(self, filenames):
    for i, file in enumerate(filenames):
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"current": i, "total": len(filenames)})
        redis.blpop(["uploads:go"], timeout=20)
    return len(filenames)


# Tasks guide: "Retrying" (default_retry_delay shortened from 30 * 60 for the test)
@task(bind=True, default_retry_delay=0.1)
def send_twitter_status(self, oauth, tweet):
    try:
        twitter = Twitter(oauth)
        twitter.update_status(tweet)
    except (Twitter.FailWhaleError, Twitter.LoginError) as exc:
        raise self.retry(exc=exc)


# Tasks guide: "Automatic retry for known exceptions"
@task(autoretry_for=(FailWhaleError,), retry_kwargs={"max_retries": 5, "countdown": 0.1})
def refresh_timeline(user):
    Twitter(user).update_status(f"refreshed {user}")
    return user


# Tasks guide: "Ignore"
@task(bind=True)
def some_task(self):
    if redis.sismember("tasks.revoked", self.request.id):
        raise Ignore()
    return "ran"


# Tasks guide: "Instantiation" (the database connection cached on the task class)
class DatabaseTask(Task):
    _db = None

    @property
    def db(self):
        if self._db is None:
            self._db = {"connections": os.getpid()}
        return self._db


@task(base=DatabaseTask, bind=True)
def process_rows(self):
    return sorted(self.db)


# Calling guide: "Linking (callbacks/errbacks)"
@task
def add(x, y):
    return x + y


@task
def record(value):
    redis.rpush("records", value)


@task
def error_handler(request, exc, traceback):
    redis.rpush("errors", "Task {0} raised exception: {1!r}\n{2!r}".format(request.id, exc, traceback))
