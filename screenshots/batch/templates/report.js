// report.html's behaviour: filters (status, change, search, look-alike groups), sorting, the
// pages of cards and the dialog. The rows and the dialog's labels come from the JSON block
// #report-data; every value of a row is shown as text (textContent), never as markup, and
// only a row's "href" (an http(s) URL checked when the report was written) becomes a link.
"use strict";
var REPORT=null, ORDER=null, MATCHING=[], PAGE=0;
function report(){
  if(REPORT===null){
    REPORT=JSON.parse(document.getElementById('report-data').textContent);
    // A large run's further rows, in blocks of their own (see report.py).
    document.querySelectorAll('script.report-rows').forEach(function(block){
      var more=JSON.parse(block.textContent);
      for(var i=0;i<more.length;i++){REPORT.rows.push(more[i]);}
    });
  }
  return REPORT;
}
function value(row,key){var v=row[key]; return v===undefined||v===null?-1:Number(v);}
function sortKey(how){
  return {line:'line',time:'duration',size:'bytes',change:'changed_pct',group:'group_size'}[
    how.split('-')[0]];
}
function sorted(){
  // The order of every row (indexes), computed once per sort choice.
  if(ORDER===null){
    var rows=report().rows, how=document.getElementById('sort').value, key=sortKey(how);
    var sign=how.endsWith('-desc')?-1:1, keys=new Float64Array(rows.length);
    ORDER=new Uint32Array(rows.length);
    for(var i=0;i<rows.length;i++){ORDER[i]=i; keys[i]=value(rows[i],key);}
    ORDER.sort(function(a,b){
      return sign*(keys[a]-keys[b])||(rows[a].line-rows[b].line)||(a-b);});
  }
  return ORDER;
}
function applySort(){ORDER=null; applyFilter();}
function applyFilter(){
  var rows=report().rows, order=sorted();
  var status=document.getElementById('status').value;
  var change=document.getElementById('change').value;
  var text=document.getElementById('search').value.trim().toLowerCase();
  var grouped=document.getElementById('grouped').checked;
  var over=Number(document.getElementById('hide-over').value)||0;
  var found=[];
  for(var n=0;n<order.length;n++){
    var i=order[n], row=rows[i];
    if(status!=='all'&&row.status!==status){continue;}
    if(change!=='all'&&row.change!==change){continue;}
    if(grouped&&row.group!==undefined&&row.group>=0&&row.group!==i){continue;}
    if(over&&(row.group_size||0)>over){continue;}
    if(text!==''&&((row.url||'')+' '+(row.final_url||'')+' '+(row.title||''))
        .toLowerCase().indexOf(text)<0){continue;}
    found.push(i);
  }
  MATCHING=found; PAGE=0;
  document.getElementById('shown').textContent=found.length;
  render();
}
function turn(step){
  var pages=Math.max(1,Math.ceil(MATCHING.length/report().pageSize));
  PAGE=Math.min(pages-1,Math.max(0,PAGE+step)); render();
}
function element(tag,cls,text){
  var e=document.createElement(tag); if(cls){e.className=cls;}
  if(text!==undefined){e.textContent=String(text);} return e;
}
function card(i){
  var row=report().rows[i], box=element('div','card '+row.status);
  box.dataset.index=i; box.dataset.status=row.status; box.dataset.line=row.line;
  box.dataset.duration=row.duration===undefined?'':row.duration;
  box.dataset.bytes=row.bytes===undefined?'':row.bytes;
  if(row.change){box.dataset.change=row.change; box.classList.add('change-'+row.change);}
  var thumb=element('button','thumb'); thumb.type='button';
  thumb.title='show the image and its details';
  var src=row.thumb||row.src;
  if(src){var img=element('img'); img.loading='lazy'; img.src=src;
    img.alt='screenshot of '+row.url; thumb.appendChild(img);}
  else{thumb.appendChild(element('div','noimg','no screenshot'));}
  box.appendChild(thumb);
  var meta=element('div','meta');
  if(row.href){var a=element('a','url',row.url); a.href=row.href; a.rel='noopener noreferrer';
    meta.appendChild(a);}
  else{meta.appendChild(element('span','url',row.url));}
  if(row.facts){meta.appendChild(element('div','',row.facts));}
  if(row.change){meta.appendChild(element('div','change',row.change+
    (row.changed_pct!==undefined?' · '+row.changed_pct+'% of pixels':'')));}
  if(row.group_size>1){meta.appendChild(element('div','group',row.group_size+' look-alikes'));}
  if(row.title&&row.status==='ok'){var t=element('div','title');
    t.appendChild(element('b','',row.title)); meta.appendChild(t);}
  if(row.error){meta.appendChild(element('div','err',row.error));}
  box.appendChild(meta);
  return box;
}
function render(){
  var size=report().pageSize, grid=document.getElementById('grid');
  var pages=Math.max(1,Math.ceil(MATCHING.length/size));
  var part=document.createDocumentFragment();
  MATCHING.slice(PAGE*size,(PAGE+1)*size).forEach(function(i){part.appendChild(card(i));});
  grid.textContent=''; grid.appendChild(part);
  document.getElementById('page').textContent='page '+(PAGE+1)+' of '+pages;
  document.getElementById('prev').disabled=PAGE===0;
  document.getElementById('next').disabled=PAGE>=pages-1;
}
function picture(id,src){
  var img=document.getElementById(id);
  if(src){img.src=src; img.hidden=false;} else {img.removeAttribute('src'); img.hidden=true;}
}
function show(box){
  var row=report().rows[Number(box.dataset.index)];
  var dialog=document.getElementById('viewer');
  var link=document.getElementById('viewer-link');
  picture('viewer-img',row.src);
  if(row.src){link.href=row.src; link.hidden=false;}
  else{link.removeAttribute('href'); link.hidden=true;}
  picture('viewer-diff',row.diff);
  document.getElementById('viewer-diff-box').hidden=!row.diff;
  document.getElementById('viewer-title').textContent=row.url;
  var list=document.getElementById('viewer-meta'); list.textContent='';
  report().labels.forEach(function(pair){
    var value=row[pair[0]];
    if(value===null||value===undefined||value===''||(Array.isArray(value)&&!value.length)){return;}
    var dt=element('dt','',pair[1]);
    var dd=element('dd'); dd.dataset.field=pair[0];
    if(Array.isArray(value)){dd.appendChild(element('pre','',value.join('\n')));}
    else {dd.textContent=String(value);}
    list.appendChild(dt); list.appendChild(dd);
  });
  dialog.showModal();
}
document.addEventListener('click',function(event){
  var thumb=event.target.closest&&event.target.closest('.card .thumb');
  if(thumb){event.preventDefault();show(thumb.closest('.card'));}
});
document.addEventListener('DOMContentLoaded',applyFilter);
