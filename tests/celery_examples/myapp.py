"""myapp.py (Celery's examples/app), imports changed.

Usage:

   (window1)$ TASKRAIL_IMPORTS=myapp rq worker -w workers.Worker -c config.rq default

   (window2)$ python
   >>> from myapp import add
   >>> add.delay(16, 16).get()
   32
"""

from tasks import task


@task()
def add(x, y):
    return x + y
