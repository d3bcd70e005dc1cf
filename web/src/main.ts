// The evaluation page of flowserve: loads the model list, and on every model change resets each
// view from the new card and cancels whatever the previous model still had in flight.
import { abortAll, apiCall, freshSignal } from './api.js';
import { clearError, reportError, setStatus } from './alerts.js';
import { configureAnomaly, initAnomaly } from './anomaly-view.js';
import { byId, h } from './dom.js';
import { configureInterpolation, initInterpolation, pickEnd, samplesReplaced } from './interpolation-view.js';
import { isReady, optionLabel, renderModelCard } from './model-card-view.js';
import { initPlane, setPlaneSamples, startPlane } from './plane-view.js';
import { configureSamples, currentSamples, initSamples, markEnds, runSamples } from './samples-view.js';
import type { ModelCard, ModelList } from './types.js';
import { viewKind } from './view-kind.js';

const select = byId<HTMLSelectElement>('model-select');
const modelSection = byId('model');
let cards: ModelCard[] = [];

async function selectModel(name: string): Promise<void> {
  let card = cards.find((c) => c.name === name);
  if (!card) return;
  abortAll(); // the previous model's answers must not land on this one's views
  clearError();
  if (isReady(card) && !card.input) {
    // A list entry without the full card (an older server): ask for the card itself.
    try {
      card = await apiCall<ModelCard>(`/models/${encodeURIComponent(name)}`, { signal: freshSignal('card') });
      cards = cards.map((c) => (c.name === name ? card! : c));
    } catch (err) {
      reportError(err, 'Loading the model card');
      return;
    }
    if (select.value !== name) return; // another model was picked meanwhile
  }
  document.body.dataset.model = card.name;
  renderModelCard(byId('model-card'), card);
  const plane = viewKind(card) === 'plane' && isReady(card);
  byId('plane').hidden = !plane;
  byId('nav-plane').hidden = !plane;
  configureSamples(card);
  configureInterpolation(card);
  configureAnomaly(card);
  setPlaneSamples(null);
  if (!isReady(card)) return;
  if (plane) void startPlane(card);
  void runSamples();
}

async function start(): Promise<void> {
  initSamples({
    onPick: (item, index) => pickEnd(item, index),
    onSamples: (answer) => {
      setPlaneSamples(answer);
      samplesReplaced();
    },
  });
  initPlane((item, index) => pickEnd(item, index));
  initInterpolation((indexes) => markEnds(indexes));
  initAnomaly(currentSamples);
  byId('error-close').addEventListener('click', clearError);
  select.addEventListener('change', () => void selectModel(select.value));

  byId('retry-models').addEventListener('click', () => void loadModels());
  await loadModels();
  document.body.dataset.ready = 'true';
}

async function loadModels(): Promise<void> {
  const retry = byId<HTMLButtonElement>('retry-models');
  retry.hidden = true;
  clearError();
  setStatus(modelSection, 'loading', 'Loading the models…');
  try {
    const list = await apiCall<ModelList>('/models');
    cards = list.models;
    if (!cards.length) throw new Error('The server has no models.');
    select.replaceChildren(...cards.map((c) => h('option', { value: c.name }, optionLabel(c))));
    const first = cards.find((c) => c.name === list.defaultModel) ?? cards.find(isReady) ?? cards[0];
    select.value = first.name;
    select.disabled = false;
    setStatus(modelSection, 'done', `${cards.filter(isReady).length} of ${cards.length} models ready; default ${list.defaultModel ?? first.name}.`);
    await selectModel(first.name);
  } catch (err) {
    setStatus(modelSection, 'error', 'The model list could not be loaded.');
    retry.hidden = false;
    reportError(err, 'Loading the models');
  }
}

void start();
