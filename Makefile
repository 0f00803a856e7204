# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DEBUG ?= true
DEMO_TICKETS ?= 500

.PHONY: run test install migrate seed messages check-migrations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo --tickets $(DEMO_TICKETS)

# Web on http://127.0.0.1:8000, a Celery worker with embedded beat; Ctrl-C stops all.
run: seed
	$(BIN)/honcho start -f Procfile

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check-migrations: install
	$(BIN)/python manage.py makemigrations --check --dry-run

# zh-hans is translated by hand (make sure `msgattrib --untranslated` and `--only-fuzzy` print
# nothing); English is the source language, so its catalog is generated from the template.
messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete --keep-pot --ignore=.venv --ignore=var --ignore=tests --ignore=bench
	msginit --no-translator --no-wrap -l en -i locale/django.pot -o locale/en/LC_MESSAGES/django.po
	rm locale/django.pot
	$(BIN)/python manage.py compilemessages --ignore=.venv
	msgattrib --untranslated --only-fuzzy locale/zh_Hans/LC_MESSAGES/django.po

clean:
	rm -rf var/celery var/celerybeat-schedule*
