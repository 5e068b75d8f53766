// Entry point of the participant app: reads the page's state (put there by the server) and
// starts the code for this page. Also takes over the study's front door.

import { connection, setApiBase } from './api.js';
import { EventLog, showPageError } from './events.js';
import {
  startConsent, startDeclined, startDone, startEntry, startQuestionnaire, startScreen,
} from './pages.js';
import { startTask } from './task.js';

const PAGES = {
  consent: startConsent,
  declined: startDeclined,
  screen: startScreen,
  task: startTask,
  questionnaire: startQuestionnaire,
  done: startDone,
};

function boot() {
  const door = document.getElementById('proglab-app');
  if (door) {
    startEntry(door);
    return;
  }
  const root = document.getElementById('app');
  if (!root || !root.dataset.state) return;
  let pageState;
  try {
    pageState = JSON.parse(root.dataset.state);
  } catch {
    showPageError('This page could not be read. Please reload it.');
    return;
  }
  setApiBase(pageState.api);
  connection.render();
  const log = new EventLog(pageState);
  // Whatever an earlier page left unsent goes first.
  log.flush();
  const start = PAGES[root.dataset.page];
  if (start) {
    const handle = start(pageState, log);
    // For tests and researchers' tools: the page's objects, read-only by convention.
    window.proglab = { pageState, log, connection, ...(handle || {}) };
  }
  root.dataset.ready = 'true';
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
